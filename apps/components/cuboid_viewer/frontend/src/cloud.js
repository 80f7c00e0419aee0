// One frame's points on the GPU, their colours, and the subsets drawn on top of them (the points
// inside the selected box, and the neighbourhood the orthographic views show).
//
// The points arrive once per frame as little-endian float32 x, y, z, intensity (16 bytes a point).
// They are uploaded once, as one interleaved buffer (positions read straight from it) plus one
// uint8 colour per point; orbiting the camera uploads nothing.

import * as THREE from "three";
import { scanBox } from "./geometry.js";
import { shuffledOrder } from "./lod.js";

export const STRIDE = 4; // floats per point: x, y, z, intensity

/** A Float32Array over the bytes Streamlit delivered (copied only when they are not 4-aligned). */
export function floatsFrom(bytes) {
  if (bytes instanceof ArrayBuffer) return new Float32Array(bytes);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  return new Float32Array(bytes.slice().buffer);
}

/** Turbo colour map (polynomial fit by A. Mikhailov, 2019); t in [0, 1] -> [r, g, b] in 0..255. */
export function turbo(t) {
  t = Math.min(1, Math.max(0, t));
  const r = 34.61 + t * (1172.33 - t * (10793.56 - t * (33300.12 - t * (38394.49 - t * 14825.05))));
  const g = 23.31 + t * (557.33 + t * (1225.33 - t * (3574.96 - t * (1073.77 + t * 707.56))));
  const b = 27.2 + t * (3211.1 - t * (15327.97 - t * (27814.0 - t * (22569.18 - t * 6838.66))));
  return [r, g, b].map((v) => Math.min(255, Math.max(0, v)));
}

function grey(t) {
  const v = 60 + 195 * Math.min(1, Math.max(0, t));
  return [v * 0.85, v * 0.92, v];
}

/** The lo-th and hi-th quantiles of every stride-th value from `offset` (on a sample of at most 20k). */
function quantiles(data, offset, count, lo, hi) {
  const step = Math.max(1, Math.floor(count / 20000));
  const sample = [];
  for (let i = 0; i < count; i += step) sample.push(data[i * STRIDE + offset]);
  sample.sort((a, b) => a - b);
  const at = (q) => sample[Math.min(sample.length - 1, Math.floor(q * (sample.length - 1)))];
  return [at(lo), at(hi)];
}

export class Cloud {
  constructor(frameKey, data) {
    this.frameKey = frameKey;
    this.data = data;
    this.count = Math.floor(data.length / STRIDE);
    this.heightRange = quantiles(data, 2, this.count, 0.01, 0.99);
    this.intensityRange = quantiles(data, 3, this.count, 0.0, 0.99);
    this.colorCache = new Map();
    this.geometry = null;
    this.moving = null;
  }

  /** uint8 RGB per point for "height" or "intensity" (computed once per mode). */
  colors(mode) {
    if (!this.colorCache.has(mode)) {
      const [lo, hi] = mode === "intensity" ? this.intensityRange : this.heightRange;
      const offset = mode === "intensity" ? 3 : 2;
      const map = mode === "intensity" ? grey : turbo;
      const out = new Uint8Array(this.count * 3);
      const span = hi - lo || 1;
      for (let i = 0; i < this.count; i++) {
        const rgb = map((this.data[i * STRIDE + offset] - lo) / span);
        out[3 * i] = rgb[0]; out[3 * i + 1] = rgb[1]; out[3 * i + 2] = rgb[2];
      }
      this.colorCache.set(mode, out);
    }
    return this.colorCache.get(mode);
  }

  /** The GPU geometry: positions straight from the interleaved buffer, colours for `mode`. */
  buildGeometry(mode) {
    if (!this.geometry) {
      const interleaved = new THREE.InterleavedBuffer(this.data, STRIDE);
      this.geometry = new THREE.BufferGeometry();
      this.geometry.setAttribute("position", new THREE.InterleavedBufferAttribute(interleaved, 3, 0));
      this.geometry.computeBoundingSphere();
    }
    this.geometry.setAttribute("color", new THREE.BufferAttribute(this.colors(mode), 3, true));
    if (this.moving) this.moving.setAttribute("color", this.geometry.attributes.color);
    return this.geometry;
  }

  /** The geometry drawn while the camera moves: the same buffers, the first `n` points of a fixed
   * random order (see lod.js); built once, then only its draw range changes. */
  movingGeometry(n) {
    if (!this.moving) {
      this.moving = new THREE.BufferGeometry();
      this.moving.setAttribute("position", this.geometry.attributes.position);
      this.moving.setAttribute("color", this.geometry.attributes.color);
      this.moving.setIndex(new THREE.BufferAttribute(shuffledOrder(this.count), 1));
      this.moving.boundingSphere = this.geometry.boundingSphere;
    }
    this.moving.setDrawRange(0, n);
    return this.moving;
  }

  dispose() {
    if (this.geometry) this.geometry.dispose();
    if (this.moving) this.moving.dispose();
    this.geometry = null;
    this.moving = null;
  }
}

/** A small, growable set of points copied out of a cloud (drawn as its own THREE.Points). */
export class Subset {
  constructor(material, layer) {
    this.capacity = 0;
    this.geometry = new THREE.BufferGeometry();
    this.points = new THREE.Points(this.geometry, material);
    this.points.frustumCulled = false;
    if (layer !== undefined) this.points.layers.set(layer);
    this.grow(4096);
  }

  grow(capacity) {
    this.capacity = capacity;
    this.positions = new Float32Array(capacity * 3);
    this.colors = new Uint8Array(capacity * 3);
    this.geometry.setAttribute("position", new THREE.BufferAttribute(this.positions, 3));
    this.geometry.setAttribute("color", new THREE.BufferAttribute(this.colors, 3, true));
  }

  /** Fill with the points `indices` (Uint32Array, first `n`) of `cloud`, coloured by `colors`. */
  fill(cloud, indices, n, colors) {
    if (n > this.capacity) this.grow(Math.max(n, this.capacity * 2));
    for (let j = 0; j < n; j++) {
      const i = indices[j], k = i * STRIDE;
      this.positions[3 * j] = cloud.data[k];
      this.positions[3 * j + 1] = cloud.data[k + 1];
      this.positions[3 * j + 2] = cloud.data[k + 2];
      this.colors[3 * j] = colors[3 * i];
      this.colors[3 * j + 1] = colors[3 * i + 1];
      this.colors[3 * j + 2] = colors[3 * i + 2];
    }
    this.geometry.attributes.position.needsUpdate = true;
    this.geometry.attributes.color.needsUpdate = true;
    this.geometry.setDrawRange(0, n);
  }

  clear() {
    this.geometry.setDrawRange(0, 0);
  }
}

/**
 * One pass over the cloud for `box`: how many points lie inside it, and (when `scratch` is given:
 * {inside, near}, two Uint32Arrays as long as the cloud) the indices of the points inside it and
 * of those within `margin` of it, which the orthographic views draw.
 */
export function membership(cloud, box, margin, scratch = null) {
  let nInside = 0, nNear = 0;
  const visit = scratch ? (i, inside) => {
    scratch.near[nNear++] = i;
    if (inside) scratch.inside[nInside++] = i;
  } : null;
  const count = scanBox(cloud.data, STRIDE, cloud.count, box, margin, visit);
  return { count, nearCount: nNear };
}
