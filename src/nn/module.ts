// Module: the PyTorch-style building block. Parameters are the tensors a module holds that require grad; buffers
// are the other tensors it holds (running statistics); children are modules in its fields (or arrays of them).
import { WgnnError } from '../errors.js';
import { Tensor } from '../tensor.js';

/** PyTorch's nn.Module for wgnn: subclass it, hold layers and tensors in fields and write `forward`; `parameters()`, `train()`/`eval()`, `dispose()` walk the fields. */
export abstract class Module {
  /** Training mode (dropout active, batch statistics in batch norm); `eval()` turns it off. */
  training = true;

  /** The module applied to a batch `x`. */
  abstract forward(x: Tensor): Tensor;

  /** Runs `forward`. */
  call(x: Tensor): Tensor {
    return this.forward(x);
  }

  /** Parameters with dotted names (`fc1.kernel`, `layers.0.bias`), in field order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    return this.walk(prefix).filter(([, t]) => t.requiresGrad);
  }

  /** The trainable tensors (what an optimizer updates). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Tensors held that are not parameters (e.g. batch norm's running mean and variance). */
  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.walk(prefix).filter(([, t]) => !t.requiresGrad);
  }

  /** Parameters and buffers: everything `save()` writes. */
  namedTensors(prefix = ''): [string, Tensor][] {
    return this.walk(prefix);
  }

  /** Direct child modules with their field names. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v)) v.forEach((m, i) => m instanceof Module && out.push([`${k}.${i}`, m]));
    }
    return out;
  }

  /** Sets training mode here and in every child. */
  train(mode = true): this {
    this.training = mode;
    for (const [, c] of this.namedChildren()) c.train(mode);
    return this;
  }

  /** Inference mode (`train(false)`): dropout off, batch norm on its running statistics. */
  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's `.grad`. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = undefined;
    }
  }

  /** Frees every parameter, gradient and buffer. */
  dispose(): void {
    for (const [, t] of this.walk('')) {
      t.grad?.dispose();
      t.dispose();
    }
  }

  /**
   * Puts `t` where the dotted name (as `namedTensors` gives it: `layers.1.attn.qkv.kernel`) points: the field of the
   * module that holds it. A name that leads nowhere is a WgnnError.
   */
  setTensor(name: string, t: Tensor): void {
    const path = name.split('.');
    const field = path.pop()!;
    let at: unknown = this;
    for (const key of path) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
    if (!(at instanceof Module) || !(Object.hasOwn(at, field) && at[field as keyof Module] instanceof Tensor))
      throw new WgnnError(`setTensor: ${name} names no tensor of this module`);
    (at as unknown as Record<string, Tensor>)[field] = t;
  }

  /** Called before the module's tensors are listed (layers build their weights here if they can). */
  protected prepare(): void {}

  private walk(prefix: string): [string, Tensor][] {
    this.prepare();
    const out: [string, Tensor][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Tensor && !v.isDisposed) out.push([prefix + k, v]);
    }
    for (const [k, c] of this.namedChildren()) out.push(...c.walk(`${prefix}${k}.`));
    return out;
  }
}
