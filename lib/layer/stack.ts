/**
 * LayerStack: layers in order, base first. `flatten()` is what a runtime unpacks; `squash()` the
 * single layer that means the same on an empty root.
 */
import { Rootfs } from '../rootfs/rootfs';
import { applyLayer } from './apply';
import { diff } from './diff';
import { Layer } from './layer';

export class LayerStack {
  private constructor(readonly layers: readonly Layer[]) {}

  static of(...layers: Layer[]): LayerStack {
    return new LayerStack(Object.freeze([...layers]));
  }

  static empty(): LayerStack {
    return new LayerStack(Object.freeze([]));
  }

  get length(): number {
    return this.layers.length;
  }

  push(layer: Layer): LayerStack {
    return new LayerStack(Object.freeze([...this.layers, layer]));
  }

  /** Apply every layer, in order, on `base` (default: an empty root). */
  flatten(base: Rootfs = Rootfs.empty()): Rootfs {
    let rootfs = base;
    for (const layer of this.layers) rootfs = applyLayer(rootfs, layer);
    return rootfs;
  }

  /** One layer equal in effect to the whole stack applied to an empty root. */
  async squash(): Promise<Layer> {
    return diff(Rootfs.empty(), this.flatten());
  }
}

export function flatten(layers: Iterable<Layer>, base: Rootfs = Rootfs.empty()): Rootfs {
  return LayerStack.of(...layers).flatten(base);
}
