// The side panel: the numeric fields of the selected box (x, y, z, l, w, h, yaw in degrees, label),
// its live numbers (points inside, volume, distance) and the list of boxes and pending proposals.

import { labelColor } from "./boxview.js";
import { proposalOrigin } from "./editor.js";

const FIELDS = ["x", "y", "z", "l", "w", "h", "yaw"];
const $ = (id) => document.getElementById(id);

function fieldValues(item) {
  return { x: item.center[0], y: item.center[1], z: item.center[2], l: item.size[0], w: item.size[1], h: item.size[2],
    yaw: (item.yaw * 180) / Math.PI };
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function hex(label) {
  return `#${labelColor(label).toString(16).padStart(6, "0")}`;
}

export class Panel {
  constructor(editor, actions) {
    Object.assign(this, { editor, actions });
    this.labels = [];
    for (const name of FIELDS) $(`f-${name}`).addEventListener("change", () => this.fieldChanged(name));
    $("f-label").addEventListener("change", () => this.labelChanged());
    $("accept").addEventListener("click", () => actions.accept());
    $("reject").addEventListener("click", () => actions.remove());
    $("delete").addEventListener("click", () => actions.remove());
    $("list").addEventListener("click", (e) => {
      const row = e.target.closest(".row");
      if (row) actions.select(row.dataset.id);
    });
  }

  setLabels(labels) {
    if (labels.join() === this.labels.join()) return;
    this.labels = labels;
    for (const id of ["f-label", "new-label"]) {
      const select = $(id), value = select.value;
      select.innerHTML = labels.map((l) => `<option value="${escape(l)}">${escape(l)}</option>`).join("");
      if (labels.includes(value)) select.value = value;
    }
  }

  /** Apply one numeric field to the selected box (sizes stay positive; yaw is typed in degrees). */
  fieldChanged(name) {
    const item = this.editor.selected();
    const value = Number($(`f-${name}`).value);
    if (!item || this.editor.isProposal(item) || !Number.isFinite(value)) return this.refresh(null, true);
    const center = item.center.slice(), size = item.size.slice();
    let yaw = item.yaw;
    if ("xyz".includes(name)) center["xyz".indexOf(name)] = value;
    else if ("lwh".includes(name)) size["lwh".indexOf(name)] = Math.max(0.05, value);
    else yaw = (value * Math.PI) / 180;
    this.editor.updateBox(item.id, { center, size, yaw });
    this.actions.edited();
  }

  labelChanged() {
    const item = this.editor.selected();
    if (item && !this.editor.isProposal(item)) {
      this.editor.updateBox(item.id, { label: $("f-label").value });
      this.actions.edited();
    }
  }

  /** Redraw from the editor; `inside` is the selected box's point count. Inputs being typed in are left alone. */
  refresh(inside, force = false) {
    const item = this.editor.selected();
    const proposal = this.editor.isProposal(item);
    $("selection-title").textContent = !item ? "Nothing selected" : proposal
      ? `Proposal: ${item.label} (${proposalOrigin(item, true)})`
      : `Box #${this.editor.boxes.indexOf(item) + 1}: ${item.label}`;
    const values = item ? fieldValues(item) : null;
    for (const name of FIELDS) {
      const input = $(`f-${name}`);
      input.disabled = !item || proposal;
      if (force || document.activeElement !== input) input.value = values ? values[name].toFixed(name === "yaw" ? 1 : 2) : "";
    }
    const label = $("f-label");
    label.disabled = !item || proposal;
    if (item && document.activeElement !== label) label.value = item.label;
    $("live").innerHTML = item ? liveNumbers(item, inside) : "Tab selects a box; N places a new one.";
    $("accept").disabled = !proposal && !this.editor.pendingProposals().length;
    $("reject").disabled = !proposal;
    $("delete").disabled = !item || proposal;
  }

  /** The box list: boxes with their numbers, then the pending proposals. */
  refreshList(countOf) {
    const rows = this.editor.boxes.map((box, k) => row(box, `#${k + 1} ${box.label}`, countOf(box), false, this.editor))
      .concat(this.editor.pendingProposals().map((p) => row(p, `${p.label}?`, countOf(p), true, this.editor)));
    $("list").innerHTML = rows.join("") || '<div class="row"><span class="what">No boxes yet</span></div>';
    $("list-title").textContent = `Boxes: ${this.editor.boxes.length} · proposals: ${this.editor.pendingProposals().length}`;
    const selected = $("list").querySelector(".row.selected");
    if (selected) selected.scrollIntoView({ block: "nearest" });
  }
}

function liveNumbers(item, inside) {
  const [l, w, h] = item.size;
  const distance = Math.hypot(item.center[0], item.center[1]);
  return `<b>${inside ?? "–"}</b> points inside · ${l.toFixed(2)} × ${w.toFixed(2)} × ${h.toFixed(2)} m<br>`
    + `yaw ${((item.yaw * 180) / Math.PI).toFixed(1)}° · ${(l * w * h).toFixed(2)} m³ · ${distance.toFixed(1)} m away`;
}

/** One list row: a box with its size, or a proposal with where it comes from ("learned 0.82",
 * "geometric"; its size shows once it is selected). */
function row(item, what, count, proposal, editor) {
  const selected = item.id === editor.selectedId ? " selected" : "";
  const [l, w, h] = item.size;
  const detail = proposal ? proposalOrigin(item) : `${l.toFixed(1)}×${w.toFixed(1)}×${h.toFixed(1)}`;
  return `<div class="row${selected}${proposal ? " proposal" : ""}" data-id="${escape(item.id)}">`
    + `<span class="swatch" style="${proposal ? `border:1px dashed ${hex(item.label)}` : `background:${hex(item.label)}`}"></span>`
    + `<span class="what">${escape(what)}</span><span class="num">${escape(detail)}</span>`
    + `<span class="num">${count}</span></div>`;
}
