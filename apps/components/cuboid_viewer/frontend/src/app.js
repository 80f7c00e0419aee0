// The component: takes Streamlit's render messages, keeps the points cache, the editor, the views
// and the panel in step, handles the keyboard and talks back to Python.
//
// Talking back (setComponentValue, each a rerun of the Python script) happens only for
//   {type: "commit", request_id, frame_key, base_revision, boxes}   Ctrl+S or the Commit button;
//   {type: "frame", step, frame_key}                                 PageDown/PageUp, "." / ",";
//   {type: "need_points", frame_key}                                 the cache lacks the frame's points.
// Never per mouse move: boxes are edited here and go back only on commit.

import { requestId, setComponentValue, setFrameHeight } from "./bridge.js";
import { Cloud, floatsFrom } from "./cloud.js";
import { Editor } from "./editor.js";
import { Panel } from "./panel.js";
import { Viewer } from "./viewer.js";

const CACHE_FRAMES = 3; // as CACHED_FRAMES in ../__init__.py: Python resends what is not kept here
const ASK_AGAIN_MS = 3000;
const CONFIRM_MS = 4000;
const $ = (id) => document.getElementById(id);

export class App {
  constructor(stats) {
    this.stats = stats;
    this.cache = new Map(); // frame key -> Cloud, oldest first
    this.asked = new Map(); // frame key -> when the points were last asked for
    this.args = {};
    this.pending = null; // the commit waiting for Python's answer
    this.confirmLeave = 0;
    this.editor = new Editor();
    const elements = { stage: $("stage"), canvas: $("gl"), overlay: $("overlay"), free: $("free"),
      ortho: { top: $("ortho-top"), side: $("ortho-side"), front: $("ortho-front") } };
    this.viewer = new Viewer(elements, this.editor, stats, {
      onEdit: () => this.refresh(), onSelect: () => this.refresh(), onMessage: (text) => this.status(text, "error"),
      defaultSize: (label) => (this.args.default_sizes || {})[label],
    });
    this.panel = new Panel(this.editor, {
      accept: () => this.accept(), remove: () => this.remove(), edited: () => this.refresh(),
      select: (id) => { this.editor.select(id); this.refresh(); },
    });
    this.bindToolbar();
    window.addEventListener("keydown", (e) => this.key(e));
    document.addEventListener("pointerdown", () => $("app").focus({ preventScroll: true }), true);
  }

  bindToolbar() {
    $("new-box").addEventListener("click", () => this.startPlacing());
    $("color-mode").addEventListener("click", () => this.toggleColors());
    $("commit").addEventListener("click", () => this.commit());
    $("prev-frame").addEventListener("click", () => this.frameStep(-1));
    $("next-frame").addEventListener("click", () => this.frameStep(1));
  }

  /** A render message from Streamlit: new arguments after a rerun. */
  render(args) {
    this.args = args;
    const height = Number(args.height) || 700;
    $("app").style.height = `${height}px`;
    setFrameHeight(height);
    this.viewer.ground = args.ground || [0, 0, 1, 0];
    this.panel.setLabels(args.labels || ["car"]);
    const frame = args.frame;
    if (frame) {
      $("frame-label").textContent = frame.title || frame.key;
      $("frame-label").title = frame.key;
      this.showCloud(frame.key, args.points);
      const answer = args.commit_result;
      const ours = Boolean(this.pending && answer && answer.ok && answer.request_id === this.pending.id);
      this.loadBoxes(ours);
    }
    this.commitAnswered(args.commit_result);
    this.refresh();
  }

  /** The working copy from the last arguments (`force`: drop uncommitted edits). */
  loadBoxes(force) {
    const { frame, revision, boxes, proposals } = this.args;
    if (frame) this.editor.load({ frameKey: frame.key, revision: revision || 0, boxes, proposals, force });
  }

  /** R: take the database's current revision of the frame, dropping uncommitted edits. */
  reloadFromDatabase() {
    this.loadBoxes(true);
    this.status(`Loaded revision ${this.editor.revision || "none yet"} from the database`, "ok");
    this.refresh();
  }

  /** Cache the points when they came with this message; show them, or ask Python for them. */
  showCloud(key, bytes) {
    if (bytes && bytes.byteLength) {
      if (this.cache.has(key)) this.cache.get(key).dispose();
      this.cache.delete(key);
      this.cache.set(key, new Cloud(key, floatsFrom(bytes)));
      this.stats.pointsReceivedMs = this.stats.pointsReceivedMs || performance.now();
      while (this.cache.size > CACHE_FRAMES) this.cache.delete(this.cache.keys().next().value);
    }
    const cloud = this.cache.get(key);
    if (cloud && cloud !== this.viewer.cloud) this.viewer.setCloud(cloud);
    $("message").style.display = cloud ? "none" : "block";
    $("message").textContent = cloud ? "" : "Loading points…";
    if (!cloud && Date.now() - (this.asked.get(key) || 0) > ASK_AGAIN_MS) {
      this.asked.set(key, Date.now());
      setComponentValue({ type: "need_points", frame_key: key, nonce: requestId() });
    }
  }

  refresh() {
    const item = this.editor.selected();
    this.panel.refresh(item ? this.viewer.insideCount(item) : null);
    this.panel.refreshList((box) => this.viewer.insideCount(box));
    if (!this.pending && !this.viewer.placing) this.showDirty();
    $("new-box").classList.toggle("active", Boolean(this.viewer.placing));
    this.viewer.invalidate();
  }

  showDirty() {
    const n = this.editor.boxes.length;
    if (this.editor.staleRevision !== null) {
      this.status(`Revision ${this.editor.staleRevision} of this frame was stored meanwhile; a commit now is refused. `
        + "R loads it (drops your changes)", "error");
    } else if (this.editor.dirty) this.status(`${n} boxes · uncommitted changes (Ctrl+S commits)`, "dirty");
    else if (!$("status").classList.contains("ok") && !$("status").classList.contains("error")) {
      this.status(`${n} boxes · revision ${this.editor.revision || "none yet"}`, "");
    }
  }

  status(text, kind) {
    $("status").textContent = text;
    $("status").className = kind || "";
  }

  // ------------------------------------------------------------------ actions

  accept() {
    this.editor.accept();
    this.refresh();
  }

  remove() {
    this.editor.removeSelected();
    this.refresh();
  }

  startPlacing() {
    const label = $("new-label").value || "car";
    this.viewer.startPlacing(label);
    $("new-box").classList.add("active");
    this.status(`Click on the ground in the 3D view to place a ${label} (Esc cancels)`, "dirty");
  }

  stopPlacing() {
    this.viewer.cancelPlacing();
    $("new-box").classList.remove("active");
  }

  toggleColors() {
    const mode = this.viewer.colorMode === "height" ? "intensity" : "height";
    this.viewer.setColorMode(mode);
    $("color-mode").textContent = `Colour: ${mode}`;
  }

  commit() {
    if (this.pending && Date.now() - this.pending.at < 10000) return;
    const id = requestId();
    this.pending = { id, at: Date.now() };
    setComponentValue(this.editor.commitPayload(id));
    this.status(`Committing ${this.editor.boxes.length} boxes…`, "");
  }

  commitAnswered(result) {
    if (!result || !this.pending || result.request_id !== this.pending.id) return;
    this.pending = null;
    if (result.ok) this.status(result.message || "Committed", "ok");
    else this.status(result.message || "The commit failed", "error");
  }

  /** Next/previous frame; with uncommitted changes the first press only warns. */
  frameStep(step) {
    const frame = this.args.frame;
    if (!frame) return;
    if (this.editor.dirty && Date.now() - this.confirmLeave > CONFIRM_MS) {
      this.confirmLeave = Date.now();
      return this.status("Uncommitted changes: Ctrl+S commits them; press again to leave the frame without", "error");
    }
    this.confirmLeave = 0;
    setComponentValue({ type: "frame", step, frame_key: frame.key, nonce: requestId() });
    this.status(step > 0 ? "Next frame…" : "Previous frame…", "");
  }

  // ------------------------------------------------------------------ keyboard

  key(event) {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && event.key.toLowerCase() === "s") {
      event.preventDefault();
      if (typing) document.activeElement.blur();
      return this.commit();
    }
    if (event.key === "Escape") {
      if (typing) return document.activeElement.blur();
      this.stopPlacing();
      this.editor.select(null);
      return this.refresh();
    }
    if (typing || ctrl || event.altKey) return;
    const action = this.keyAction(event);
    if (!action) return;
    event.preventDefault();
    action();
  }

  keyAction(event) {
    const k = event.key;
    const select = (step) => () => { this.editor.selectStep(step); this.refresh(); };
    if (k === "Tab") return select(event.shiftKey ? -1 : 1);
    const actions = {
      "]": select(1), "[": select(-1), Delete: () => this.remove(), Backspace: () => this.remove(),
      x: () => this.editor.isProposal(this.editor.selected()) && this.remove(), a: () => this.accept(),
      n: () => this.startPlacing(), c: () => this.toggleColors(), f: () => this.viewer.focusSelected(),
      q: () => this.viewer.lift(-1), e: () => this.viewer.lift(1), r: () => this.reloadFromDatabase(),
      PageDown: () => this.frameStep(1), ".": () => this.frameStep(1), PageUp: () => this.frameStep(-1), ",": () => this.frameStep(-1),
    };
    return actions[k.length === 1 ? k.toLowerCase() : k] || null;
  }
}
