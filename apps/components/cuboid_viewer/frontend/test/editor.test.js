// node --test: the working copy of a frame (accept, reject, delete, reload, commit payload).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Editor, proposalOrigin } from "../src/editor.js";

const box = (x, label = "car") => ({ center: [x, 0, 0.8], size: [4.2, 1.8, 1.6], yaw: 0, label });

function loaded() {
  const editor = new Editor();
  editor.load({ frameKey: "synthetic/f", revision: 0, boxes: [box(1)],
    proposals: [{ ...box(10), id: "p3", score: 0.9 }, { ...box(20, "pedestrian"), id: "p7", score: 0.5 }] });
  return editor;
}

test("A selects the first pending proposal, then accepts it as a box", () => {
  const editor = loaded();
  editor.accept();
  assert.equal(editor.selectedId, "p3");
  const accepted = editor.accept();
  assert.deepEqual(accepted.center, [10, 0, 0.8]);
  assert.equal(editor.boxes.length, 2);
  assert.equal(editor.selectedId, accepted.id);
  assert.deepEqual(editor.pendingProposals().map((p) => p.id), ["p7"]);
  assert.ok(editor.dirty);
});

test("Tab walks boxes then proposals; rejecting a proposal is not an edit", () => {
  const editor = loaded();
  editor.selectStep(1); editor.selectStep(1);
  assert.equal(editor.selectedId, "p3");
  editor.removeSelected();
  assert.equal(editor.selectedId, "p7");
  assert.equal(editor.dirty, false);
  editor.selectStep(-1);
  editor.removeSelected(); // deletes the box
  assert.equal(editor.boxes.length, 0);
  assert.ok(editor.dirty);
});

test("a new revision resets the working copy, keeps the selection's place and the rejections", () => {
  const editor = loaded();
  editor.select("p3"); editor.removeSelected();
  editor.select(editor.boxes[0].id);
  const payload = editor.commitPayload("req-1");
  assert.deepEqual(payload, { type: "commit", request_id: "req-1", frame_key: "synthetic/f", base_revision: 0,
    boxes: [{ center: [1, 0, 0.8], size: [4.2, 1.8, 1.6], yaw: 0, label: "car" }] });
  assert.equal(editor.load({ frameKey: "synthetic/f", revision: 0, boxes: [], proposals: [] }), false); // same revision
  editor.load({ frameKey: "synthetic/f", revision: 4, boxes: [box(1)], proposals: [{ ...box(10), id: "p3" }, { ...box(20), id: "p7" }] });
  assert.equal(editor.revision, 4);
  assert.equal(editor.selectedId, editor.boxes[0].id);
  assert.deepEqual(editor.pendingProposals().map((p) => p.id), ["p7"]);
  assert.equal(editor.dirty, false);
});

test("someone else's revision does not wipe uncommitted edits; force (own commit, R) takes it", () => {
  const editor = loaded();
  editor.updateBox(editor.boxes[0].id, { size: [5, 2, 1.5] });
  assert.equal(editor.load({ frameKey: "synthetic/f", revision: 9, boxes: [box(30)], proposals: [] }), false);
  assert.equal(editor.staleRevision, 9);
  assert.deepEqual(editor.boxes[0].size, [5, 2, 1.5]);
  assert.equal(editor.commitPayload("r").base_revision, 0); // Python refuses it as a conflict
  assert.equal(editor.load({ frameKey: "synthetic/f", revision: 9, boxes: [box(30)], proposals: [], force: true }), true);
  assert.deepEqual([editor.boxes[0].center[0], editor.staleRevision, editor.dirty], [30, null, false]);
});

test("a proposal says where it comes from: a detector's confidence or the geometric fit", () => {
  const editor = new Editor();
  editor.load({ frameKey: "synthetic/f", revision: 0, boxes: [], proposals: [
    { ...box(1), id: "p0", score: 0.4, source: "geometric" }, { ...box(9), id: "l0", score: 0.816, source: "learned" }] });
  const [geometric, learned] = editor.pendingProposals();
  assert.deepEqual([proposalOrigin(learned), proposalOrigin(geometric)], ["learned 0.82", "geometric"]);
  assert.equal(proposalOrigin(geometric, true), "geometric, score 0.40");
  assert.equal(proposalOrigin({ score: 0.5 }), "score 0.50"); // a record with no source, as before
});
