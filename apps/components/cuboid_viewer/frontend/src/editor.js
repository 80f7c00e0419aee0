// The annotator's working copy of one frame: boxes, proposals, the selection and whether anything
// changed since the last commit. No three.js and no DOM: node --test runs it as is.
//
// Python sends the frame's committed boxes with their revision id; the working copy is reset from
// them whenever the frame or the revision changes (a commit, an undo, another frame). Proposals the
// annotator rejected stay hidden for the frame until the page reloads; accepted ones become boxes.

import { wrapAngle } from "./geometry.js";

let nextBoxId = 1;

function cleanBox(raw, id) {
  return {
    id: id || `b${nextBoxId++}`,
    label: String(raw.label || "car"),
    center: raw.center.map(Number),
    size: raw.size.map(Number),
    yaw: wrapAngle(Number(raw.yaw || 0)),
  };
}

export class Editor {
  constructor() {
    this.frameKey = null;
    this.revision = 0;
    this.syncKey = null;
    this.boxes = [];
    this.proposals = [];
    this.rejected = new Map(); // frame key -> Set of rejected proposal ids
    this.selectedId = null;
    this.dirty = false;
    this.staleRevision = null; // a newer revision Python has, while uncommitted edits are kept
    this.version = 0; // bumped on every change, so views know to redraw
  }

  /**
   * Take Python's state; returns true when the working copy was reset from it. On the same frame,
   * uncommitted edits are kept when another revision arrives (someone else's commit, an undo)
   * unless `force` (the answer to this annotator's own commit, or R): `staleRevision` says so,
   * and a commit from the old base revision will be refused by Python as a conflict.
   */
  load({ frameKey, revision, boxes, proposals, force = false }) {
    const syncKey = `${frameKey}@${revision}`;
    if (syncKey === this.syncKey) return false;
    if (!force && this.dirty && frameKey === this.frameKey) {
      if (this.staleRevision !== revision) { this.staleRevision = revision; this.changed(); }
      return false;
    }
    this.staleRevision = null;
    const selectedIndex = this.boxes.findIndex((b) => b.id === this.selectedId);
    const sameFrame = frameKey === this.frameKey;
    this.frameKey = frameKey;
    this.revision = revision;
    this.syncKey = syncKey;
    this.boxes = (boxes || []).map((b) => cleanBox(b));
    const rejected = this.rejectedSet();
    this.proposals = (proposals || []).map((p) => ({ ...cleanBox(p, p.id), score: p.score, source: p.source, status: "pending" }))
      .filter((p) => !rejected.has(p.id));
    this.selectedId = sameFrame && selectedIndex >= 0 && selectedIndex < this.boxes.length
      ? this.boxes[selectedIndex].id : null;
    this.dirty = false;
    this.changed();
    return true;
  }

  rejectedSet() {
    if (!this.rejected.has(this.frameKey)) this.rejected.set(this.frameKey, new Set());
    return this.rejected.get(this.frameKey);
  }

  changed(edit = false) {
    this.version++;
    if (edit) this.dirty = true;
  }

  pendingProposals() {
    return this.proposals.filter((p) => p.status === "pending");
  }

  /** Boxes first, then the proposals still waiting for a decision: what Tab walks through. */
  items() {
    return [...this.boxes, ...this.pendingProposals()];
  }

  find(id) {
    return this.boxes.find((b) => b.id === id) || this.proposals.find((p) => p.id === id) || null;
  }

  selected() {
    return this.selectedId ? this.find(this.selectedId) : null;
  }

  isProposal(item) {
    return Boolean(item && item.status);
  }

  select(id) {
    if (id === this.selectedId) return;
    this.selectedId = id && this.find(id) ? id : null;
    this.changed();
  }

  /** Next (+1) or previous (-1) item, wrapping around. */
  selectStep(step) {
    const items = this.items();
    if (!items.length) return this.select(null);
    const at = items.findIndex((item) => item.id === this.selectedId);
    const next = at < 0 ? (step > 0 ? 0 : items.length - 1) : (at + step + items.length) % items.length;
    this.select(items[next].id);
  }

  addBox(raw) {
    const box = cleanBox(raw);
    this.boxes.push(box);
    this.selectedId = box.id;
    this.changed(true);
    return box;
  }

  /** Change a box's centre, size, yaw or label (proposals are accepted first, not edited). */
  updateBox(id, changes) {
    const box = this.boxes.find((b) => b.id === id);
    if (!box) return null;
    if (changes.center) box.center = changes.center.map(Number);
    if (changes.size) box.size = changes.size.map(Number);
    if (changes.yaw !== undefined) box.yaw = wrapAngle(Number(changes.yaw));
    if (changes.label !== undefined) box.label = String(changes.label);
    this.changed(true);
    return box;
  }

  /** Accept the selected proposal (it becomes a box and stays selected); with no proposal selected,
   * select the next pending one so the annotator sees it before accepting. */
  accept() {
    const item = this.selected();
    if (!this.isProposal(item)) {
      const pending = this.pendingProposals();
      if (pending.length) this.select(pending[0].id);
      return null;
    }
    item.status = "accepted";
    const box = this.addBox({ label: item.label, center: item.center, size: item.size, yaw: item.yaw });
    box.fromProposal = item.id;
    return box;
  }

  /** Reject the selected proposal, or delete the selected box; the next item gets selected. */
  removeSelected() {
    const item = this.selected();
    if (!item) return null;
    const order = this.items();
    const at = order.findIndex((i) => i.id === item.id);
    if (this.isProposal(item)) {
      item.status = "rejected";
      this.rejectedSet().add(item.id);
      this.changed();
    } else {
      this.boxes = this.boxes.filter((b) => b.id !== item.id);
      this.changed(true);
    }
    const rest = this.items();
    this.selectedId = rest.length ? rest[Math.min(at, rest.length - 1)].id : null;
    return item;
  }

  /** What goes back to Python on commit: the whole box list, keyed by a fresh request id. */
  commitPayload(requestId) {
    return {
      type: "commit",
      request_id: requestId,
      frame_key: this.frameKey,
      base_revision: this.revision,
      boxes: this.boxes.map((b) => ({ center: b.center, size: b.size, yaw: b.yaw, label: b.label })),
    };
  }
}

/** Where a proposal comes from, for the box list: "learned 0.82" (the detector's confidence) or "geometric";
 * with `detail`, the geometric fit's score too ("geometric, score 0.55"). */
export function proposalOrigin(item, detail = false) {
  const score = Number(item.score || 0).toFixed(2);
  if (item.source === "learned") return `learned ${score}`;
  if (item.source === "geometric") return detail ? `geometric, score ${score}` : "geometric";
  return `score ${score}`;
}
