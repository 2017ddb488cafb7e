// Prints how many tests of each kind ran (WebGPU tests are named with "[webgpu]"; gradient checks with
// "gradcheck"; GPU-vs-CPU backward with "backward gpu≈cpu") and a closing "tests: N passed, N failed" line.
import type { Reporter, TestCase, TestModule } from 'vitest/node';

type Count = { passed: number; failed: number; skipped: number };
const KINDS: [string, (name: string) => boolean][] = [
  ['webgpu tests', (n) => n.includes('[webgpu]')],
  ['gradient checks (float64 CPU, central differences)', (n) => n.includes('gradcheck')],
  ['backward gpu≈cpu', (n) => n.includes('backward gpu≈cpu')],
  ['forward gpu≈cpu', (n) => n.includes('] gpu≈cpu') && !n.includes('backward')],
];

export default class SummaryReporter implements Reporter {
  private counts = new Map<string, Count>();
  private all: Count = { passed: 0, failed: 0, skipped: 0 };

  onTestCaseResult(test: TestCase): void {
    const state = test.result().state;
    const bucket = state === 'passed' ? 'passed' : state === 'failed' ? 'failed' : 'skipped';
    this.all[bucket]++;
    for (const [kind, match] of KINDS) {
      if (!match(test.fullName)) continue;
      const c = this.counts.get(kind) ?? { passed: 0, failed: 0, skipped: 0 };
      c[bucket]++;
      this.counts.set(kind, c);
    }
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    // A file that failed outside any test (import error, crash) counts as one failure.
    const failedModules = modules.filter(
      (m) => m.state() === 'failed' && ![...m.children.allTests()].some((t) => t.result().state === 'failed'),
    ).length;
    console.log(`\nadapter: ${process.env.WGNN_ADAPTER ?? 'unknown'}`);
    for (const [kind] of KINDS) {
      const c = this.counts.get(kind) ?? { passed: 0, failed: 0, skipped: 0 };
      console.log(`  ${kind}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
    }
    const a = this.all;
    console.log(`tests: ${a.passed} passed, ${a.failed + failedModules} failed, ${a.skipped} skipped`);
  }
}
