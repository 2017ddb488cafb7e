// The seed's two-layer MLP as a PyTorch-style module: forward by hand, backward by autograd (the seed's hand-written
// backward got the gradients wrong; here nothing is derived by hand). Trains on the embedded MNIST digits.
// Run: npm run build && node dist/examples/mlp.js [steps]
import * as wg from '../src/index.js';

class MLP extends wg.Module {
  w1 = wg.nn.initialize('heNormal', [784, 128], new wg.Rng(1)).variable();
  b1 = wg.zeros([128]).variable();
  w2 = wg.nn.initialize('glorotUniform', [128, 10], new wg.Rng(2)).variable();
  b2 = wg.zeros([10]).variable();
  forward(x: wg.Tensor): wg.Tensor {
    const h = wg.linear(wg.reshape(x, [x.shape[0]!, 784]), this.w1, this.b1, { activation: 'relu' });
    return wg.linear(h, this.w2, this.b2); // logits; the loss applies softmax
  }
}

await wg.init();
const { train, test } = wg.data.loadMnist();
const net = new MLP();
const opt = wg.optim.sgd({ lr: 0.1, momentum: 0.9 });
const steps = Number(process.argv[2] ?? 500);
let step = 0;
for (let epoch = 0; step < steps; epoch++) {
  for (const b of train.batches(64, { seed: 1, epoch })) {
    if (step++ >= steps) break;
    const [x, y] = [wg.tensor(b.x, b.xShape), wg.tensor(b.y, b.yShape, { dtype: 'int32' })];
    const loss = wg.tidy(() => wg.softmaxCrossEntropy(net.forward(x), y));
    loss.backward();
    opt.step(net.parameters());
    net.zeroGrad();
    if (step % 100 === 0 || step === steps) console.log(`step ${step}: loss ${(await loss.data())[0]!.toFixed(4)}`);
    for (const t of [x, y, loss]) t.dispose();
  }
}
const logits = wg.noGrad(() => wg.tidy(() => net.forward(wg.tensor(test.x, test.xShape))));
const pred = await logits.data();
let correct = 0;
for (let i = 0; i < test.length; i++) {
  const row = Array.from(pred.subarray(i * 10, i * 10 + 10));
  correct += row.indexOf(Math.max(...row)) === test.y[i] ? 1 : 0;
}
console.log(`test accuracy ${(correct / test.length).toFixed(4)} after ${steps} steps`);
wg.shutdown();
