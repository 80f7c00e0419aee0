// Level of detail while the camera moves: a point budget that adapts to the frame rate, as point-cloud
// viewers such as Potree do. While the free camera moves (orbit, pan, zoom, the scripted orbit), the
// free view draws the first `budget` points of a fixed random order of the cloud (a uniform sample);
// the moment it stops, the next frame draws every point. After each frame drawn in motion the budget
// shrinks by a fifth when the frame took longer than TARGET_FRAME_MS plus 15% (32 ms: below 31 fps),
// and grows by a tenth when it took less than 80% of it (22 ms: above 45 fps), so a fast GPU soon
// draws everything while moving, and a software renderer (headless Chromium's SwiftShader on a CPU)
// keeps orbiting above 30 frames a second.

export const TARGET_FRAME_MS = 1000 / 36;
export const MIN_BUDGET = 5000;
export const START_BUDGET = 30000;

export class MotionDetail {
  constructor(budget = START_BUDGET) {
    this.budget = budget;
    this.moving = false;
    this.lastFrameMs = null;
  }

  start() {
    this.moving = true;
    this.lastFrameMs = null;
  }

  end() {
    this.moving = false;
  }

  /** How many of `count` points to draw in the frame about to be drawn: all of them when still. */
  pointsToDraw(count) {
    return this.moving ? Math.min(count, Math.max(MIN_BUDGET, this.budget)) : count;
  }

  /** A frame was drawn at `now` (ms): adapt the budget to the time since the last one in motion. */
  frameDrawn(now, count) {
    if (!this.moving) return;
    if (this.lastFrameMs !== null) {
      const ms = now - this.lastFrameMs;
      if (ms > TARGET_FRAME_MS * 1.15) this.budget = Math.max(MIN_BUDGET, Math.floor(this.budget * 0.8));
      else if (ms < TARGET_FRAME_MS * 0.8) this.budget = Math.min(Math.max(count, MIN_BUDGET), Math.ceil(this.budget * 1.1));
    }
    this.lastFrameMs = now;
  }
}

/** A fixed pseudo-random order of `count` indices (Fisher-Yates with a small LCG: the same every time). */
export function shuffledOrder(count, seed = 12345) {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  let state = seed >>> 0;
  for (let i = count - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = Math.floor((state / 4294967296) * (i + 1)); // the LCG's high bits: its low bits are poor
    const t = order[i]; order[i] = order[j]; order[j] = t;
  }
  return order;
}
