// The 3D views on one WebGL canvas: the free perspective view on top (orbit, pan, zoom, Q/E down/up,
// a translation gizmo, click to select or to place a box) and the three orthographic views of the
// selected box in a row below it, drawn into their own viewports with setViewport/setScissor.
//
// The full cloud is one THREE.Points (layer FULL) that only the free camera sees; the orthographic
// cameras see a small copy of the points around the selected box (layer CROP). Points inside the
// selected box are drawn again, larger and bright, on top (layer 0, every camera).
// A frame is drawn on the next animation frame after anything changed (camera, boxes, size);
// window.__viewerStats counts the frames drawn. While the free camera moves, the free view draws an
// adaptive sample of the cloud (lod.js) and every point again as soon as it stops.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { TransformControls } from "three/addons/controls/TransformControls.js";
import { BoxView, labelColor } from "./boxview.js";
import { Subset, membership } from "./cloud.js";
import { groundHeight, rayPlane } from "./geometry.js";
import { MotionDetail } from "./lod.js";
import { OrthoView, VIEWS } from "./ortho.js";

const FULL = 1, CROP = 2;
const BACKGROUND = 0x0f1216, ORTHO_BACKGROUND = 0x161b22;
const POINT_SIZE = 2, CROP_POINT_SIZE = 3, HIGHLIGHT_SIZE = 3.5;
const CLICK_PX = 5;
const ORBIT_TURN_S = 8; // one full turn of the scripted orbit takes this long

export class Viewer {
  constructor(elements, editor, stats, hooks) {
    Object.assign(this, { elements, editor, stats, hooks });
    this.colorMode = "height";
    this.cloud = null;
    this.boxViews = new Map();
    this.seenVersion = -1;
    this.dirty = true;
    this.placing = null; // the label of the box a click on the ground will place
    this.ground = [0, 0, 1, 0];
    this.insideCounts = new Map(); // box id -> [signature, count]
    this.motion = new MotionDetail();
    this.initRenderer();
    this.initFreeView();
    this.initOrthoViews();
    new ResizeObserver(() => this.layout()).observe(elements.stage);
    this.layout();
    this.loop = this.loop.bind(this);
    requestAnimationFrame(this.loop);
  }

  initRenderer() {
    const canvas = this.elements.canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, powerPreference: "high-performance" });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.autoClear = false;
    const gl = this.renderer.getContext();
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    this.stats.renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    this.scene = new THREE.Scene();
    this.pointsMaterial = new THREE.PointsMaterial({ size: POINT_SIZE, sizeAttenuation: false, vertexColors: true });
    this.crop = new Subset(new THREE.PointsMaterial({ size: CROP_POINT_SIZE, sizeAttenuation: false, vertexColors: true }), CROP);
    this.highlight = new Subset(new THREE.PointsMaterial({ size: HIGHLIGHT_SIZE, sizeAttenuation: false, color: 0x7dffb0,
      depthTest: false }));
    this.highlight.points.renderOrder = 2; // on top of the cloud and the neighbourhood copy
    this.scene.add(this.crop.points, this.highlight.points);
    this.grid = new THREE.PolarGridHelper(60, 12, 6, 72, 0x2a3340, 0x222a33);
    this.grid.rotation.x = Math.PI / 2;
    this.grid.layers.set(FULL);
    this.scene.add(this.grid);
  }

  initFreeView() {
    const element = this.elements.free;
    this.camera = new THREE.PerspectiveCamera(55, 1, 0.1, 2000);
    this.camera.up.set(0, 0, 1);
    this.camera.position.set(-26, -20, 24);
    this.camera.layers.enable(FULL);
    this.orbit = new OrbitControls(this.camera, element);
    Object.assign(this.orbit, { screenSpacePanning: false, zoomToCursor: true, maxDistance: 600 });
    this.orbit.target.set(6, 0, 0);
    this.orbit.update();
    this.orbit.addEventListener("change", () => this.invalidate());
    this.orbit.addEventListener("start", () => this.motion.start());
    this.orbit.addEventListener("end", () => { this.motion.end(); this.invalidate(); });
    this.transform = new TransformControls(this.camera, element);
    this.transform.setSize(0.8);
    this.transform.addEventListener("dragging-changed", (e) => this.gizmoDragging(e.value));
    this.transform.addEventListener("objectChange", () => this.gizmoMoved());
    this.transform.addEventListener("change", () => this.invalidate());
    this.gizmo = this.transform.getHelper();
    this.scene.add(this.gizmo);
    element.addEventListener("pointerdown", (e) => { this.down = { x: e.clientX, y: e.clientY, onGizmo: this.transform.axis !== null }; });
    element.addEventListener("pointerup", (e) => this.freeClick(e));
  }

  initOrthoViews() {
    this.orthoViews = VIEWS.map((spec) => {
      const view = new OrthoView(spec, this.elements.ortho[spec.name], CROP, this.editor, () => this.editEnded());
      view.onChange = () => this.invalidate();
      return view;
    });
  }

  invalidate() {
    this.dirty = true;
  }

  /** Viewport rectangles (CSS pixels, from the stage's top-left): the free view, then a row of three. */
  layout() {
    const { stage, canvas, overlay, free } = this.elements;
    const w = Math.max(stage.clientWidth, 30), h = Math.max(stage.clientHeight, 30);
    const orthoH = Math.round(Math.min(260, h * 0.36));
    this.freeRect = { x: 0, y: 0, w, h: Math.max(1, h - orthoH - 2) };
    const cell = (w - 4) / 3;
    this.orthoViews.forEach((view, k) => {
      view.rect = { x: Math.round(k * (cell + 2)), y: h - orthoH, w: Math.round(cell), h: orthoH };
      placeElement(view.element, view.rect);
    });
    placeElement(free, this.freeRect);
    this.renderer.setSize(w, h, false);
    canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    const ratio = this.renderer.getPixelRatio();
    overlay.width = Math.round(w * ratio); overlay.height = Math.round(h * ratio);
    overlay.style.width = `${w}px`; overlay.style.height = `${h}px`;
    this.camera.aspect = this.freeRect.w / this.freeRect.h;
    this.camera.updateProjectionMatrix();
    this.size = { w, h };
    this.invalidate();
  }

  // ------------------------------------------------------------------ points

  setCloud(cloud) {
    if (this.points) this.scene.remove(this.points);
    if (this.cloud && this.cloud !== cloud) this.cloud.dispose();
    this.cloud = cloud;
    this.points = new THREE.Points(cloud.buildGeometry(this.colorMode), this.pointsMaterial);
    this.points.layers.set(FULL);
    this.scene.add(this.points);
    this.scratch = { inside: new Uint32Array(cloud.count), near: new Uint32Array(cloud.count) };
    this.insideCounts.clear();
    this.stats.pointCount = cloud.count;
    this.stats.frameKey = cloud.frameKey;
    this.seenVersion = -1;
    this.invalidate();
  }

  setColorMode(mode) {
    this.colorMode = mode;
    if (this.cloud) this.cloud.buildGeometry(mode);
    this.seenVersion = -1;
    this.invalidate();
  }

  /** How many points lie inside `box` (cached until the box changes). */
  insideCount(box) {
    if (!this.cloud) return 0;
    const signature = `${box.center}|${box.size}|${box.yaw}`;
    const cached = this.insideCounts.get(box.id);
    if (cached && cached[0] === signature) return cached[1];
    const count = membership(this.cloud, box, 0).count;
    this.insideCounts.set(box.id, [signature, count]);
    return count;
  }

  // ------------------------------------------------------------------ boxes

  /** Bring the scene up to date with the editor (boxes, proposals, selection, highlight). */
  sync() {
    this.seenVersion = this.editor.version;
    const wanted = new Map();
    for (const box of this.editor.boxes) wanted.set(box.id, [box, false]);
    for (const p of this.editor.pendingProposals()) wanted.set(p.id, [p, true]);
    for (const [id, view] of this.boxViews) {
      if (!wanted.has(id) || view.isProposal !== wanted.get(id)[1]) {
        this.scene.remove(view.group); view.dispose(); this.boxViews.delete(id);
      }
    }
    for (const [id, [item, isProposal]] of wanted) {
      if (!this.boxViews.has(id)) {
        const view = new BoxView(item, isProposal);
        this.boxViews.set(id, view);
        this.scene.add(view.group);
      }
      this.boxViews.get(id).update(item, id === this.editor.selectedId);
    }
    this.syncSelection();
    this.invalidate();
  }

  syncSelection() {
    const item = this.editor.selected();
    const view = item ? this.boxViews.get(item.id) : null;
    if (view && !this.editor.isProposal(item)) {
      if (this.transform.object !== view.group) this.transform.attach(view.group);
    } else if (this.transform.object) {
      this.transform.detach();
    }
    if (!item || !this.cloud) {
      this.highlight.clear(); this.crop.clear(); this.selectedInside = 0;
      return;
    }
    const margin = Math.max(1.0, 0.5 * Math.max(item.size[0], item.size[1]));
    const result = membership(this.cloud, item, margin, this.scratch);
    const colors = this.cloud.colors(this.colorMode);
    this.highlight.fill(this.cloud, this.scratch.inside, result.count, colors);
    this.crop.fill(this.cloud, this.scratch.near, result.nearCount, colors);
    this.selectedInside = result.count;
    this.insideCounts.set(item.id, [`${item.center}|${item.size}|${item.yaw}`, result.count]);
    this.orthoViews.forEach((v) => v.fit(item));
  }

  gizmoDragging(active) {
    this.orbit.enabled = !active;
    if (!active) this.editEnded();
  }

  gizmoMoved() {
    const item = this.editor.selected();
    if (!item || this.editor.isProposal(item)) return;
    this.editor.updateBox(item.id, { center: this.transform.object.position.toArray() });
  }

  editEnded() {
    this.seenVersion = -1; // refit the orthographic views to the edited box
    this.invalidate();
    this.hooks.onEdit();
  }

  // ------------------------------------------------------------------ free-view clicks

  freeClick(event) {
    const down = this.down;
    this.down = null;
    if (!down || down.onGizmo || event.button !== 0) return;
    if (Math.hypot(event.clientX - down.x, event.clientY - down.y) > CLICK_PX) return;
    const ray = this.rayAt(event.clientX, event.clientY);
    if (this.placing) return this.placeAt(ray);
    const meshes = [...this.boxViews.values()].map((v) => v.faces);
    const hit = ray.intersectObjects(meshes, false)[0];
    if (hit) this.editor.select(hit.object.userData.boxId);
    this.hooks.onSelect();
  }

  rayAt(clientX, clientY) {
    const r = this.elements.free.getBoundingClientRect();
    const ndc = new THREE.Vector2(((clientX - r.left) / r.width) * 2 - 1, -((clientY - r.top) / r.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.setFromCamera(ndc, this.camera);
    return ray;
  }

  /** Place a box of the chosen class, at its default size, standing on the ground where the ray meets it. */
  placeAt(ray) {
    const hit = rayPlane(ray.ray.origin.toArray(), ray.ray.direction.toArray(), this.ground);
    if (!hit) return this.hooks.onMessage("Click on the ground to place the box.");
    const label = this.placing;
    const size = (this.hooks.defaultSize(label) || [1, 1, 1]).slice();
    const center = [hit[0], hit[1], groundHeight(this.ground, hit[0], hit[1]) + size[2] / 2];
    this.placing = null;
    this.elements.free.style.cursor = "";
    this.editor.addBox({ label, center, size, yaw: 0 });
    this.hooks.onEdit();
  }

  startPlacing(label) {
    this.placing = label;
    this.elements.free.style.cursor = "crosshair";
  }

  cancelPlacing() {
    this.placing = null;
    this.elements.free.style.cursor = "";
  }

  // ------------------------------------------------------------------ camera

  /** Move the camera and its target straight up (+) or down (-). */
  lift(direction) {
    const step = Math.max(0.2, this.camera.position.distanceTo(this.orbit.target) * 0.04) * direction;
    this.camera.position.z += step;
    this.orbit.target.z += step;
    this.orbit.update();
  }

  /** Look at the selected item from where the camera is, a few box lengths away. */
  focusSelected() {
    const item = this.editor.selected();
    if (!item) return;
    const target = new THREE.Vector3(...item.center);
    const offset = this.camera.position.clone().sub(this.orbit.target).setLength(Math.max(8, 3 * Math.max(...item.size)));
    this.orbit.target.copy(target);
    this.camera.position.copy(target).add(offset);
    this.orbit.update();
  }

  /** Scripted orbit for the benchmark: the camera circles the target for `seconds`, moving every
   * animation frame; resolves with the frames drawn per second. */
  /** Circle the camera for `seconds`; with `fullDetail`, every point in every frame (no motion LOD). */
  orbitFor(seconds, fullDetail = false) {
    return new Promise((resolve) => {
      const offset = this.camera.position.clone().sub(this.orbit.target);
      if (!fullDetail) this.motion.start();
      this.orbitRun = { seconds, resolve, frames: 0, start: null, last: null, drawn: 0, fullDetail,
        radius: Math.hypot(offset.x, offset.y), height: offset.z, angle: Math.atan2(offset.y, offset.x) };
    });
  }

  stepOrbit(now) {
    const run = this.orbitRun;
    if (run.start === null) run.start = now;
    const angle = run.angle + (2 * Math.PI * (now - run.start)) / (ORBIT_TURN_S * 1000);
    const t = this.orbit.target;
    this.camera.position.set(t.x + run.radius * Math.cos(angle), t.y + run.radius * Math.sin(angle), t.z + run.height);
    this.camera.lookAt(t);
    this.invalidate();
  }

  finishOrbit(now) {
    const run = this.orbitRun;
    run.frames++;
    run.last = now;
    if (now - run.start < run.seconds * 1000) return;
    this.orbitRun = null;
    if (!run.fullDetail) this.motion.end();
    this.orbit.update();
    this.invalidate();
    const seconds = (run.last - run.start) / 1000;
    run.resolve({ fps: (run.frames - 1) / seconds, frames: run.frames, seconds, points: this.cloud ? this.cloud.count : 0,
      meanPointsDrawn: run.drawn / run.frames, fullDetail: run.fullDetail,
      viewport: [this.size.w, this.size.h], renderer: this.stats.renderer });
  }

  // ------------------------------------------------------------------ drawing

  loop(now) {
    requestAnimationFrame(this.loop);
    if (this.orbitRun) this.stepOrbit(now);
    if (this.editor.version !== this.seenVersion) this.sync();
    if (!this.dirty) return;
    this.dirty = false;
    const drawn = this.render();
    this.countFrame(now);
    this.motion.frameDrawn(now, this.cloud ? this.cloud.count : 0);
    if (this.orbitRun) { this.orbitRun.drawn += drawn; this.finishOrbit(now); }
  }

  render() {
    const r = this.renderer;
    r.setScissorTest(true);
    this.gizmo.visible = Boolean(this.transform.object);
    const drawn = this.choosePoints();
    this.drawView(this.freeRect, this.camera, BACKGROUND);
    const item = this.editor.selected();
    this.showOnlySelected(true);
    for (const view of this.orthoViews) {
      if (item && view.frame) view.placeCamera();
      this.drawView(view.rect, item && view.frame ? view.camera : null, ORTHO_BACKGROUND);
    }
    this.showOnlySelected(false);
    this.drawOverlay(item);
    if (this.cloud && !this.stats.firstPointsMs && drawn === this.cloud.count) this.firstPoints();
    return drawn;
  }

  /** Every point when the camera is still, the motion budget's sample while it moves; how many. */
  choosePoints() {
    if (!this.cloud) return 0;
    const n = this.motion.pointsToDraw(this.cloud.count);
    this.pointsDrawn = n;
    this.points.geometry = n < this.cloud.count ? this.cloud.movingGeometry(n) : this.cloud.geometry;
    return n;
  }

  /** The orthographic views show the selected box alone (no gizmo, no other boxes). */
  showOnlySelected(on) {
    this.gizmo.visible = !on && Boolean(this.transform.object);
    for (const [id, view] of this.boxViews) view.group.visible = !on || id === this.editor.selectedId;
  }

  drawView(rect, camera, background) {
    const r = this.renderer, y = this.size.h - rect.y - rect.h;
    r.setViewport(rect.x, y, rect.w, rect.h);
    r.setScissor(rect.x, y, rect.w, rect.h);
    r.setClearColor(background, 1);
    r.clear();
    if (camera) r.render(this.scene, camera);
  }

  /** The first frame with points: wait for the GPU, note the time (ms since the iframe's navigation). */
  firstPoints() {
    this.renderer.getContext().finish();
    const now = performance.now();
    Object.assign(this.stats, { firstPointsMs: now, loadedAt: now, loadMs: now - this.stats.scriptStartMs });
  }

  countFrame(now) {
    const s = this.stats;
    s.frames++;
    s.recent.push(now);
    while (s.recent.length && s.recent[0] < now - 1000) s.recent.shift();
    s.fps = s.recent.length;
  }

  drawOverlay(item) {
    const ctx = this.elements.overlay.getContext("2d");
    const ratio = this.renderer.getPixelRatio();
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.size.w, this.size.h);
    this.drawLabels(ctx);
    const isProposal = this.editor.isProposal(item);
    this.orthoViews.forEach((view) => view.draw(ctx, item, isProposal));
  }

  /** "#k label" above every box (and the selected proposal) in the free view. */
  drawLabels(ctx) {
    ctx.font = "11px sans-serif";
    const v = new THREE.Vector3();
    this.editor.items().forEach((item, k) => {
      if (this.editor.isProposal(item) && item.id !== this.editor.selectedId) return;
      v.set(item.center[0], item.center[1], item.center[2] + item.size[2] / 2 + 0.3).project(this.camera);
      if (v.z > 1 || Math.abs(v.x) > 1 || Math.abs(v.y) > 1) return;
      const x = (v.x + 1) / 2 * this.freeRect.w, y = (1 - v.y) / 2 * this.freeRect.h;
      const proposal = this.editor.isProposal(item);
      ctx.fillStyle = proposal ? "rgba(216,216,216,0.8)" : `#${labelColor(item.label).toString(16).padStart(6, "0")}`;
      ctx.fillText(proposal ? `proposal ${item.label}` : `#${k + 1} ${item.label}`, x - 12, y);
    });
  }

  /** Where a world point appears, in the iframe's client pixels (for scripts and tests). */
  project(point) {
    const v = new THREE.Vector3(...point).project(this.camera);
    const r = this.elements.free.getBoundingClientRect();
    return { x: r.left + (v.x + 1) / 2 * r.width, y: r.top + (1 - v.y) / 2 * r.height, visible: v.z < 1 && Math.abs(v.x) <= 1 && Math.abs(v.y) <= 1 };
  }
}

function placeElement(element, rect) {
  Object.assign(element.style, { left: `${rect.x}px`, top: `${rect.y}px`, width: `${rect.w}px`, height: `${rect.h}px` });
}
