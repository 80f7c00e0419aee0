// node --test: the viewer's box geometry (no browser needed).
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromLocal, moveInView, rayPlane, resizeFromHandle, rotateToPointer, scanBox, toLocal, wrapAngle } from "../src/geometry.js";

const BOX = { center: [10, 2, 0.8], size: [4, 2, 1.6], yaw: 0.5 };
const close = (a, b, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("local and world coordinates are inverse", () => {
  const p = fromLocal(BOX, 1.5, -0.7, 0.3);
  toLocal(BOX, ...p).forEach((v, k) => close(v, [1.5, -0.7, 0.3][k]));
});

test("dragging the front edge grows the length and keeps the back edge", () => {
  const out = resizeFromHandle(BOX, [0, 1], [1, 0], [2.5, 0.4]); // front edge pulled 0.5 m ahead
  close(out.size[0], 4.5); close(out.size[1], 2); close(out.size[2], 1.6);
  const back = fromLocal(out, -out.size[0] / 2, 0, 0), before = fromLocal(BOX, -2, 0, 0);
  back.forEach((v, k) => close(v, before[k]));
});

test("a corner in the side view sets length and height; sizes stay positive", () => {
  const out = resizeFromHandle(BOX, [0, 2], [-1, 1], [-3, 1.2]);
  close(out.size[0], 5); close(out.size[2], 2.0); close(out.center[2], 0.8 + 0.2);
  const flat = resizeFromHandle(BOX, [0, 1], [0, 1], [0, -5]);
  close(flat.size[1], 0.05);
});

test("moving and rotating", () => {
  const moved = moveInView(BOX, [1, 2], [1, 0.5]); // front view: along v and z
  const expected = fromLocal(BOX, 0, 1, 0.5);
  moved.center.forEach((v, k) => close(v, expected[k]));
  close(rotateToPointer(BOX, [0, 3]).yaw, wrapAngle(0.5 + Math.PI / 2));
  close(wrapAngle(3 * Math.PI), -Math.PI);
});

test("scanBox counts what a brute-force local-frame test counts", () => {
  const n = 5000, data = new Float32Array(n * 4);
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (let i = 0; i < n; i++) [14 * random() + 3, 10 * random() - 3, 3 * random() - 0.5].forEach((v, k) => { data[4 * i + k] = v; });
  let brute = 0;
  for (let i = 0; i < n; i++) {
    const [u, v, w] = toLocal(BOX, data[4 * i], data[4 * i + 1], data[4 * i + 2]);
    if (Math.abs(u) <= 2 && Math.abs(v) <= 1 && Math.abs(w) <= 0.8) brute++;
  }
  const near = [];
  assert.equal(scanBox(data, 4, n, BOX, 0.5, (i, inside) => near.push([i, inside])), brute);
  assert.ok(brute > 50 && near.length > brute && near.filter(([, inside]) => inside).length === brute);
});

test("a ray meets the ground plane ahead of it only", () => {
  assert.deepEqual(rayPlane([0, 0, 10], [0, 0.6, -0.8], [0, 0, 1, 0]), [0, 7.5, 0]);
  assert.equal(rayPlane([0, 0, 10], [0, 0.6, 0.8], [0, 0, 1, 0]), null);
});
