// The seed's Keras CNN, line for line in wgnn's Keras-style API, trained on the embedded MNIST digits.
// Run: npm run build && node dist/examples/cnn.js [epochs] [train-samples]
import * as wg from '../src/index.js';

await wg.init();
const { train, test } = wg.data.loadMnist();
const n = Number(process.argv[3] ?? train.length);
const part = train.slice(0, n);

const model = wg.sequential([
  wg.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
  wg.layers.maxPool2d({ poolSize: 2 }),
  wg.layers.flatten(),
  wg.layers.dense({ units: 64, activation: 'relu' }),
  wg.layers.dense({ units: 10, activation: 'softmax' }),
]);
model.summary();
model.compile({ optimizer: wg.optim.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
await model.fit(
  { data: part.x, shape: part.xShape },
  { data: part.y, shape: part.yShape },
  {
    epochs: Number(process.argv[2] ?? 3),
    batchSize: 64,
    validationData: [
      { data: test.x, shape: test.xShape },
      { data: test.y, shape: test.yShape },
    ],
  },
);
const { acc } = await model.evaluate({ data: test.x, shape: test.xShape }, { data: test.y, shape: test.yShape });
console.log(`test accuracy ${acc!.toFixed(4)}`);
wg.shutdown();
