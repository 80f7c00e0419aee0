// Cuboid geometry shared by the views, with no three.js in it (node --test runs it as is).
//
// Frame: the LiDAR frame, x forward, y left, z up (metres), as in playground/pointcloud/cuboid.py.
// A box is {center: [x, y, z], size: [l, w, h], yaw}; its own axes are u (heading, along l),
// v (left, along w) and z. A point p is inside when |u| <= l/2, |v| <= w/2, |z'| <= h/2 with
// (u, v, z') = R(-yaw) (p - center).

export const MIN_SIZE = 0.05; // metres: no side of a box gets smaller than this

export function wrapAngle(angle) {
  const turn = 2 * Math.PI;
  return angle - turn * Math.floor((angle + Math.PI) / turn);
}

/** The world direction of box axis 0 (u, heading), 1 (v, left) or 2 (z, up). */
export function axisVector(yaw, axis) {
  const c = Math.cos(yaw), s = Math.sin(yaw);
  return [[c, s, 0], [-s, c, 0], [0, 0, 1]][axis];
}

/** A world point in the box's own frame: [u, v, z']. */
export function toLocal(box, x, y, z) {
  const dx = x - box.center[0], dy = y - box.center[1];
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  return [c * dx + s * dy, -s * dx + c * dy, z - box.center[2]];
}

/** A point given in the box's own frame, in the world. */
export function fromLocal(box, u, v, w) {
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  return [box.center[0] + c * u - s * v, box.center[1] + s * u + c * v, box.center[2] + w];
}

/**
 * Scan an interleaved float32 buffer (stride floats per point, x y z first) once: how many points lie
 * inside `box`, and, when `visit` is given, call visit(index, inside) for every point within `margin`
 * of the box on every side (inside tells whether it is in the box itself).
 */
export function scanBox(data, stride, count, box, margin = 0, visit = null) {
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const [cx, cy, cz] = box.center;
  const hl = box.size[0] / 2, hw = box.size[1] / 2, hh = box.size[2] / 2;
  const reach = Math.hypot(hl, hw) + margin;
  let inside = 0;
  for (let i = 0, k = 0; i < count; i++, k += stride) {
    const dx = data[k] - cx, dy = data[k + 1] - cy;
    if (dx > reach || dx < -reach || dy > reach || dy < -reach) continue;
    const u = c * dx + s * dy, v = -s * dx + c * dy, w = data[k + 2] - cz;
    const au = Math.abs(u), av = Math.abs(v), aw = Math.abs(w);
    const isInside = au <= hl && av <= hw && aw <= hh;
    if (isInside) inside++;
    if (visit && au <= hl + margin && av <= hw + margin && aw <= hh + margin) visit(i, isInside);
  }
  return inside;
}

/**
 * Resize from a handle. `start` is the box when the drag began; `axes` the two box axes a view shows
 * ([0, 1] top, [0, 2] side, [1, 2] front); `signs` which side of each axis the handle sits on
 * (-1, 0 or +1; 0 leaves that axis alone); `pointer` where the handle now is, in metres along the two
 * axes from the start centre. The opposite side stays where it was.
 */
export function resizeFromHandle(start, axes, signs, pointer) {
  const size = start.size.slice();
  const offset = [0, 0, 0];
  axes.forEach((axis, k) => {
    if (!signs[k]) return;
    const fixed = -signs[k] * start.size[axis] / 2;
    size[axis] = Math.max(MIN_SIZE, signs[k] * (pointer[k] - fixed));
    offset[axis] = fixed + signs[k] * size[axis] / 2;
  });
  return { ...start, size, center: shiftAlongAxes(start, offset) };
}

/** Move the box by `delta` metres along the two axes a view shows. */
export function moveInView(start, axes, delta) {
  const offset = [0, 0, 0];
  axes.forEach((axis, k) => { offset[axis] = delta[k]; });
  return { ...start, center: shiftAlongAxes(start, offset) };
}

/** Rotate (top view): the heading follows `pointer` ([u, v] metres from the start centre, start frame). */
export function rotateToPointer(start, pointer) {
  return { ...start, yaw: wrapAngle(start.yaw + Math.atan2(pointer[1], pointer[0])) };
}

function shiftAlongAxes(box, offset) {
  const center = box.center.slice();
  for (let axis = 0; axis < 3; axis++) {
    const dir = axisVector(box.yaw, axis);
    for (let j = 0; j < 3; j++) center[j] += offset[axis] * dir[j];
  }
  return center;
}

/** Where the ray origin + t dir meets the plane a x + b y + c z + d = 0 (t > 0), or null. */
export function rayPlane(origin, dir, plane) {
  const [a, b, c, d] = plane;
  const denom = a * dir[0] + b * dir[1] + c * dir[2];
  if (Math.abs(denom) < 1e-9) return null;
  const t = -(a * origin[0] + b * origin[1] + c * origin[2] + d) / denom;
  if (!(t > 0) || t > 2000) return null;
  return [origin[0] + t * dir[0], origin[1] + t * dir[1], origin[2] + t * dir[2]];
}

/** The ground's height under (x, y) on the plane a x + b y + c z + d = 0. */
export function groundHeight(plane, x, y) {
  const [a, b, c, d] = plane;
  return Math.abs(c) < 1e-9 ? 0 : -(a * x + b * y + d) / c;
}
