// The top, side and front orthographic views of the selected box, each centred on it, with drag
// handles: the 4 corners and 4 edge midpoints resize (the opposite side stays put), the inside
// moves the box in the view's plane, and in the top view a round handle ahead of the box rotates it.
//
// Each view looks along one of the box's own axes, so its screen axes are two box axes:
//   top:   right = +u (heading), up = +v (left)    side: right = +u, up = +z    front: right = +v, up = +z.
// While a handle is dragged the view's frame (centre, heading, scale) stays frozen, so the handle
// follows the pointer exactly; when the drag ends the view fits the new box again.

import * as THREE from "three";
import { axisVector, moveInView, resizeFromHandle, rotateToPointer } from "./geometry.js";

export const VIEWS = [
  { name: "top", title: "Top", axes: [0, 1] },
  { name: "side", title: "Side", axes: [0, 2] },
  { name: "front", title: "Front", axes: [1, 2] },
];
const HANDLE_PX = 7;
const PICK_PX = 11;
const ROTATE_PX = 26; // the rotate handle sits this far ahead of the front edge
const SIGNS = [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, 1], [-1, -1], [1, -1]];

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function dot(a, b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export class OrthoView {
  constructor(spec, element, cropLayer, editor, onDragEnd) {
    Object.assign(this, { spec, element, editor, onDragEnd });
    this.camera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0.01, 200);
    this.camera.layers.enable(cropLayer);
    this.rect = { x: 0, y: 0, w: 1, h: 1 };
    this.frame = null; // {center, yaw, scale}: where the view looks and how many pixels a metre is
    this.drag = null;
    this.onChange = () => {};
    element.addEventListener("pointerdown", (e) => this.pointerDown(e));
    element.addEventListener("pointermove", (e) => this.pointerMove(e));
    element.addEventListener("pointerup", (e) => this.pointerUp(e));
    element.addEventListener("pointercancel", (e) => this.pointerUp(e));
  }

  /** Centre the view on `box` and fit it with room for the handles (not while a drag is on). */
  fit(box) {
    if (this.drag) return;
    const [a, b] = this.spec.axes;
    const scale = Math.min(this.rect.w / (box.size[a] * 1.5 + 1.6), this.rect.h / (box.size[b] * 1.5 + 1.2));
    this.frame = { center: box.center.slice(), yaw: box.yaw, scale: Math.max(scale, 1e-3) };
    this.placeCamera();
  }

  axes() {
    return this.spec.axes.map((axis) => axisVector(this.frame.yaw, axis));
  }

  placeCamera() {
    const [right, up] = this.axes();
    const back = cross(right, up);
    const { center, scale } = this.frame;
    const distance = 60;
    this.camera.position.set(...center.map((c, k) => c + back[k] * distance));
    this.camera.up.set(...up);
    this.camera.lookAt(...center);
    const halfW = this.rect.w / 2 / scale, halfH = this.rect.h / 2 / scale;
    Object.assign(this.camera, { left: -halfW, right: halfW, top: halfH, bottom: -halfH, near: 0.01, far: 2 * distance });
    this.camera.updateProjectionMatrix();
  }

  /** A world point in view pixels (from the view's top-left corner). */
  toScreen(p) {
    const [right, up] = this.axes();
    const d = p.map((v, k) => v - this.frame.center[k]);
    return [this.rect.w / 2 + dot(d, right) * this.frame.scale, this.rect.h / 2 - dot(d, up) * this.frame.scale];
  }

  /** View pixels in metres along the view's two axes, from the frame's centre. */
  toView(px, py) {
    return [(px - this.rect.w / 2) / this.frame.scale, (this.rect.h / 2 - py) / this.frame.scale];
  }

  /** The world position of the point `local` (metres along the box's own axes) of `box`. */
  worldOf(box, local) {
    const p = box.center.slice();
    local.forEach((amount, axis) => {
      const dir = axisVector(box.yaw, axis);
      for (let k = 0; k < 3; k++) p[k] += amount * dir[k];
    });
    return p;
  }

  /** The handles of `box` in view pixels: resize handles (signs along the two view axes) and rotate. */
  handles(box) {
    const [a, b] = this.spec.axes;
    const out = SIGNS.map((signs) => {
      const local = [0, 0, 0];
      local[a] = signs[0] * box.size[a] / 2;
      local[b] = signs[1] * box.size[b] / 2;
      return { kind: "resize", signs, at: this.toScreen(this.worldOf(box, local)) };
    });
    if (this.spec.name === "top") {
      const ahead = box.size[0] / 2 + ROTATE_PX / this.frame.scale;
      out.push({ kind: "rotate", signs: [0, 0], at: this.toScreen(this.worldOf(box, [ahead, 0, 0])),
        from: this.toScreen(this.worldOf(box, [box.size[0] / 2, 0, 0])) });
    }
    return out;
  }

  /** The handle of kind/signs, by name: "+a", "-b", "+a+b", "rotate" (for scripts and tests). */
  handleByName(box, name) {
    if (name === "rotate") return this.handles(box).find((h) => h.kind === "rotate") || null;
    const signs = [0, 0];
    for (const [, sign, axis] of name.matchAll(/([+-])([ab])/g)) signs[axis === "a" ? 0 : 1] = sign === "+" ? 1 : -1;
    return this.handles(box).find((h) => h.kind === "resize" && h.signs[0] === signs[0] && h.signs[1] === signs[1]);
  }

  selectedBox() {
    const item = this.editor.selected();
    return item && !this.editor.isProposal(item) ? item : null;
  }

  local(event) {
    const r = this.element.getBoundingClientRect();
    return [event.clientX - r.left, event.clientY - r.top];
  }

  pick(box, px, py) {
    let best = null, bestDistance = PICK_PX;
    for (const handle of this.handles(box)) {
      const distance = Math.hypot(handle.at[0] - px, handle.at[1] - py);
      if (distance < bestDistance || (handle.kind === "rotate" && distance < PICK_PX)) {
        best = handle; bestDistance = distance;
      }
    }
    if (best) return best;
    const [a, b] = this.toView(px, py);
    const [ia, ib] = this.spec.axes;
    return Math.abs(a) <= box.size[ia] / 2 && Math.abs(b) <= box.size[ib] / 2 ? { kind: "move", at: [px, py] } : null;
  }

  pointerDown(event) {
    const box = this.selectedBox();
    if (!box || event.button !== 0) return;
    this.fit(box);
    const [px, py] = this.local(event);
    const handle = this.pick(box, px, py);
    if (!handle) return;
    event.preventDefault();
    this.element.setPointerCapture(event.pointerId);
    const start = { center: box.center.slice(), size: box.size.slice(), yaw: box.yaw };
    this.drag = { handle, start, id: box.id, grab: [handle.at[0] - px, handle.at[1] - py], from: [px, py] };
  }

  pointerMove(event) {
    const [px, py] = this.local(event);
    if (!this.drag) return this.hover(px, py);
    const { handle, start, grab, from } = this.drag;
    let next;
    if (handle.kind === "move") {
      const [a0, b0] = this.toView(...from), [a1, b1] = this.toView(px, py);
      next = moveInView(start, this.spec.axes, [a1 - a0, b1 - b0]);
    } else {
      const at = this.toView(px + grab[0], py + grab[1]);
      next = handle.kind === "rotate" ? rotateToPointer(start, at) : resizeFromHandle(start, this.spec.axes, handle.signs, at);
    }
    this.editor.updateBox(this.drag.id, next);
    this.onChange();
  }

  pointerUp(event) {
    if (!this.drag) return;
    if (this.element.hasPointerCapture(event.pointerId)) this.element.releasePointerCapture(event.pointerId);
    this.drag = null;
    this.onDragEnd();
  }

  hover(px, py) {
    const box = this.selectedBox();
    const handle = box && this.frame ? this.pick(box, px, py) : null;
    const cursors = { rotate: "grab", move: "move", resize: "crosshair" };
    this.element.style.cursor = handle ? cursors[handle.kind] : "default";
  }

  /** Handles, the heading and the view's caption on the 2D overlay (ctx is in stage pixels). */
  draw(ctx, item, isProposal) {
    const { x, y } = this.rect;
    ctx.save();
    ctx.translate(x, y);
    ctx.font = "11px sans-serif";
    const [a, b] = this.spec.axes;
    const caption = item ? `${this.spec.title}  ${"lwh"[a]} ${item.size[a].toFixed(2)} × ${"lwh"[b]} ${item.size[b].toFixed(2)} m`
      : `${this.spec.title}: select a box`;
    ctx.fillStyle = "rgba(15,18,22,0.75)";
    ctx.fillRect(0, 0, ctx.measureText(caption).width + 12, 20);
    ctx.fillStyle = "rgba(230,235,245,0.9)";
    ctx.fillText(caption, 6, 14);
    if (item && !isProposal && this.frame) this.drawHandles(ctx, item);
    ctx.restore();
  }

  drawHandles(ctx, box) {
    for (const handle of this.handles(box)) {
      ctx.fillStyle = handle.kind === "rotate" ? "#7fe3ff" : "#ffffff";
      ctx.strokeStyle = "#101418";
      ctx.lineWidth = 1.5;
      if (handle.kind === "rotate") {
        ctx.beginPath();
        ctx.moveTo(...handle.from);
        ctx.lineTo(...handle.at);
        ctx.strokeStyle = "#7fe3ff";
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(handle.at[0], handle.at[1], HANDLE_PX * 0.8, 0, 2 * Math.PI);
        ctx.fill();
        ctx.strokeStyle = "#101418";
        ctx.stroke();
      } else {
        const s = HANDLE_PX;
        ctx.fillRect(handle.at[0] - s / 2, handle.at[1] - s / 2, s, s);
        ctx.strokeRect(handle.at[0] - s / 2, handle.at[1] - s / 2, s, s);
      }
    }
  }
}
