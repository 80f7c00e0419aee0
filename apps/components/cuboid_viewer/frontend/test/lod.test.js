// node --test: the motion level of detail (no browser needed).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MIN_BUDGET, MotionDetail, TARGET_FRAME_MS, shuffledOrder } from "../src/lod.js";

test("every point is drawn when the camera is still", () => {
  const detail = new MotionDetail(20000);
  assert.equal(detail.pointsToDraw(100000), 100000);
  detail.start();
  assert.equal(detail.pointsToDraw(100000), 20000);
  detail.end();
  assert.equal(detail.pointsToDraw(100000), 100000);
});

test("the budget shrinks on slow frames and grows back to every point on fast ones", () => {
  const detail = new MotionDetail(50000);
  detail.start();
  let now = 0;
  for (let k = 0; k < 5; k++) { now += 3 * TARGET_FRAME_MS; detail.frameDrawn(now, 100000); }
  assert.ok(detail.budget < 50000 * 0.8 ** 3, `${detail.budget}`);
  for (let k = 0; k < 200; k++) { now += 0.5 * TARGET_FRAME_MS; detail.frameDrawn(now, 100000); }
  assert.equal(detail.pointsToDraw(100000), 100000);
  for (let k = 0; k < 200; k++) { now += 10 * TARGET_FRAME_MS; detail.frameDrawn(now, 100000); }
  assert.equal(detail.pointsToDraw(100000), MIN_BUDGET);
});

test("frames near the target leave the budget alone; frames when still do not count", () => {
  const detail = new MotionDetail(40000);
  detail.frameDrawn(1000, 100000);
  detail.frameDrawn(5000, 100000);
  assert.equal(detail.budget, 40000);
  detail.start();
  detail.frameDrawn(0, 100000);
  detail.frameDrawn(TARGET_FRAME_MS, 100000);
  assert.equal(detail.budget, 40000);
});

test("the order is a fixed permutation whose prefixes sample the cloud evenly", () => {
  const order = shuffledOrder(10000);
  assert.deepEqual(order, shuffledOrder(10000));
  assert.equal(new Set(order).size, 10000);
  const firstQuarter = order.slice(0, 2500);
  const low = firstQuarter.filter((i) => i < 5000).length;
  assert.ok(Math.abs(low - 1250) < 120, `${low}`);
});
