// The drawing pad: a large canvas to draw a digit on with mouse, pen or touch (pointer events), turned into the
// 28×28 input in [0,1] that MNIST's digits are (white on black; the ink scaled into a 20×20 box, centred by mass).
import { SIDE } from './mnist.js';

const PIXELS = SIDE * SIDE;
/** MNIST fits each digit into a 20×20 box inside its 28×28 image. */
const BOX = 20;

export class DrawPad {
  /** The model's input: 784 values in [0,1], row-major. */
  input: Float32Array = new Float32Array(PIXELS);
  private readonly ctx: CanvasRenderingContext2D;
  private readonly small = document.createElement('canvas');
  private last: { x: number; y: number } | undefined;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly preview: HTMLCanvasElement,
    private readonly changed: () => void,
  ) {
    this.ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    this.small.width = this.small.height = SIDE;
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = this.at(e);
      this.stroke(this.last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (this.last) this.stroke(this.at(e));
    });
    for (const end of ['pointerup', 'pointercancel'] as const)
      canvas.addEventListener(end, () => (this.last = undefined));
    this.clear();
  }

  clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.input = new Float32Array(PIXELS);
    this.show();
  }

  /** Puts a 28×28 digit (values in [0,1]) on the pad; the model gets exactly these pixels. */
  showDigit(pixels: Float32Array): void {
    const img = new ImageData(SIDE, SIDE);
    pixels.forEach((v, i) => img.data.set([v * 255, v * 255, v * 255, 255], 4 * i));
    const sctx = this.small.getContext('2d')!;
    sctx.putImageData(img, 0, 0);
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.drawImage(this.small, 0, 0, this.canvas.width, this.canvas.height);
    this.input = Float32Array.from(pixels);
    this.show();
  }

  private at(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) * this.canvas.width) / r.width,
      y: ((e.clientY - r.top) * this.canvas.height) / r.height,
    };
  }

  private stroke(p: { x: number; y: number }): void {
    const from = this.last ?? p;
    const c = this.ctx;
    c.strokeStyle = '#fff';
    c.lineWidth = this.canvas.width / 13;
    c.lineCap = c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(from.x, from.y);
    c.lineTo(p.x + 0.01, p.y);
    c.stroke();
    this.last = p;
    this.input = this.downsample();
    this.show();
  }

  /** The pad's ink as MNIST prepares a digit: bounding box scaled to fit 20×20, then shifted so its centre of mass is the image's centre. */
  private downsample(): Float32Array {
    const { width: w, height: h } = this.canvas;
    const big = this.ctx.getImageData(0, 0, w, h).data;
    let [x0, y0, x1, y1] = [w, h, -1, -1];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (big[4 * (y * w + x)]! > 0)
          [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      }
    }
    if (x1 < 0) return new Float32Array(PIXELS);
    const scale = BOX / Math.max(x1 - x0 + 1, y1 - y0 + 1);
    const [bw, bh] = [(x1 - x0 + 1) * scale, (y1 - y0 + 1) * scale];
    const render = (dx: number, dy: number): Float32Array => {
      const s = this.small.getContext('2d', { willReadFrequently: true })!;
      s.fillStyle = '#000';
      s.fillRect(0, 0, SIDE, SIDE);
      s.imageSmoothingEnabled = true;
      s.imageSmoothingQuality = 'high';
      s.drawImage(this.canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, dx, dy, bw, bh);
      const d = s.getImageData(0, 0, SIDE, SIDE).data;
      return Float32Array.from({ length: PIXELS }, (_, i) => d[4 * i]! / 255);
    };
    const first = render((SIDE - bw) / 2, (SIDE - bh) / 2);
    let [m, mx, my] = [0, 0, 0];
    first.forEach((v, i) => {
      m += v;
      mx += v * (i % SIDE);
      my += v * Math.floor(i / SIDE);
    });
    // NOTE: pixel centres are at i + 0.5, so the image's centre of mass should sit at 14, i.e. 13.5 in indices.
    return render((SIDE - bw) / 2 + (SIDE - 1) / 2 - mx / m, (SIDE - bh) / 2 + (SIDE - 1) / 2 - my / m);
  }

  private show(): void {
    const img = new ImageData(SIDE, SIDE);
    this.input.forEach((v, i) => img.data.set([v * 255, v * 255, v * 255, 255], 4 * i));
    this.preview.getContext('2d')!.putImageData(img, 0, 0);
    this.changed();
  }
}
