// Entry point of the cuboid viewer (bundled to build/viewer.js; the bundle's first statement, a
// banner added by build.mjs, records window.__viewerScriptStart).
//
// For scripts and tests (the browser test and scripts/bench_viewer.py read these):
//   window.__viewerStats   {scriptStartMs, pointsReceivedMs, firstPointsMs (= loadedAt), loadMs,
//                           timeOrigin, frames, fps, pointCount, frameKey, renderer}
//                          times are ms since the iframe's navigation (performance.now());
//                          loadMs = first frame drawn with points - script start; fps = frames
//                          drawn in the last second.
//   window.__viewerOrbit(seconds, fullDetail = false)
//                       -> Promise<{fps, frames, seconds, points, meanPointsDrawn, fullDetail, viewport, renderer}>
//                          circles the camera every animation frame and measures the frames drawn.
//   window.__viewerDebug   state(), project([x, y, z]), pointsDrawn(), handle(view, name), viewRect(view), scale(view).

import { connect } from "./bridge.js";
import { App } from "./app.js";

const stats = {
  scriptStartMs: window.__viewerScriptStart ?? performance.now(),
  timeOrigin: performance.timeOrigin,
  pointsReceivedMs: null, firstPointsMs: null, loadedAt: null, loadMs: null,
  frames: 0, fps: 0, recent: [], pointCount: 0, frameKey: null, renderer: "",
};
window.__viewerStats = stats;

let app;
try {
  app = new App(stats);
} catch (err) {
  document.getElementById("message").style.display = "block";
  document.getElementById("message").textContent = `The 3D viewer could not start: ${err.message} (is WebGL available?)`;
  throw err;
}

window.__viewerOrbit = (seconds = 5, fullDetail = false) => app.viewer.orbitFor(seconds, fullDetail);
window.__viewerDebug = {
  state: () => ({
    frameKey: app.editor.frameKey, revision: app.editor.revision, dirty: app.editor.dirty, selectedId: app.editor.selectedId,
    boxes: app.editor.boxes.map((b) => ({ ...b, inside: app.viewer.insideCount(b) })),
    proposals: app.editor.pendingProposals().map((p) => ({ ...p })),
    status: document.getElementById("status").textContent, placing: app.viewer.placing,
  }),
  project: (point) => app.viewer.project(point),
  pointsDrawn: () => app.viewer.pointsDrawn,
  handle: (view, name) => {
    const ortho = app.viewer.orthoViews.find((v) => v.spec.name === view);
    const item = app.editor.selected();
    if (!ortho || !item || !ortho.frame) return null;
    const handle = ortho.handleByName(item, name);
    const r = ortho.element.getBoundingClientRect();
    return handle ? { x: r.left + handle.at[0], y: r.top + handle.at[1] } : null;
  },
  scale: (view) => app.viewer.orthoViews.find((v) => v.spec.name === view)?.frame?.scale ?? null,
};

connect((args) => app.render(args));
