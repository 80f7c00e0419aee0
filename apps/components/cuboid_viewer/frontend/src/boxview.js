// How one cuboid looks in the scene: its 12 edges plus a cross on the front face (the heading),
// translucent faces (also what a click picks), solid for annotations and dashed for proposals.

import * as THREE from "three";

export const LABEL_COLORS = {
  car: 0xffa630, pedestrian: 0xff4fa3, cyclist: 0x4fd1ff, pole: 0xb4ff4f, truck: 0xffe14f, van: 0xff7a45,
};
const PROPOSAL_COLOR = 0xd8d8d8;
const SELECTED_COLOR = 0xffffff;

export function labelColor(label) {
  return LABEL_COLORS[label] ?? 0x9ad0ff;
}

// corners in units of the half-size: (u, v, z) signs
const CORNERS = [[1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1], [1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]];
const EDGES = [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7],
  [0, 7], [3, 4]]; // the last two cross the front face (+u)

function edgePositions(size) {
  const out = new Float32Array(EDGES.length * 6);
  EDGES.forEach(([a, b], k) => {
    [a, b].forEach((corner, j) => {
      for (let d = 0; d < 3; d++) out[k * 6 + j * 3 + d] = CORNERS[corner][d] * size[d] / 2;
    });
  });
  return out;
}

export class BoxView {
  constructor(item, isProposal) {
    this.id = item.id;
    this.isProposal = isProposal;
    this.group = new THREE.Group();
    this.edges = new THREE.LineSegments(new THREE.BufferGeometry(), isProposal
      ? new THREE.LineDashedMaterial({ color: PROPOSAL_COLOR, dashSize: 0.3, gapSize: 0.2, transparent: true })
      : new THREE.LineBasicMaterial({ color: labelColor(item.label), transparent: true }));
    this.faces = new THREE.Mesh(new THREE.BoxGeometry(1, 1, 1), new THREE.MeshBasicMaterial({
      color: labelColor(item.label), transparent: true, opacity: 0.06, depthWrite: false }));
    this.faces.userData.boxId = item.id;
    this.group.add(this.edges, this.faces);
    this.sizeKey = "";
  }

  /** Follow the item (position, heading, size, label) and show whether it is selected. */
  update(item, selected) {
    this.group.position.set(item.center[0], item.center[1], item.center[2]);
    this.group.rotation.set(0, 0, item.yaw);
    const sizeKey = item.size.join(",");
    if (sizeKey !== this.sizeKey) {
      this.sizeKey = sizeKey;
      this.edges.geometry.setAttribute("position", new THREE.BufferAttribute(edgePositions(item.size), 3));
      this.edges.geometry.computeBoundingSphere();
      if (this.isProposal) this.edges.computeLineDistances();
      this.faces.scale.set(item.size[0], item.size[1], item.size[2]);
    }
    const base = this.isProposal ? PROPOSAL_COLOR : labelColor(item.label);
    this.edges.material.color.setHex(selected ? SELECTED_COLOR : base);
    this.edges.material.opacity = selected || !this.isProposal ? 1 : 0.75;
    this.faces.material.color.setHex(base);
    this.faces.material.opacity = selected ? 0.1 : this.isProposal ? 0.0 : 0.05;
    this.faces.material.visible = selected || !this.isProposal;
  }

  dispose() {
    this.edges.geometry.dispose();
    this.edges.material.dispose();
    this.faces.geometry.dispose();
    this.faces.material.dispose();
  }
}
