// Prints how many WebGPU tests ran (tests named with "[webgpu]") and a closing "tests: N passed, N failed" line.
import type { Reporter, TestCase, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  private gpu = { passed: 0, failed: 0, skipped: 0 };
  private all = { passed: 0, failed: 0, skipped: 0 };

  onTestCaseResult(test: TestCase): void {
    const state = test.result().state;
    const bucket = state === 'passed' ? 'passed' : state === 'failed' ? 'failed' : 'skipped';
    this.all[bucket]++;
    if (test.fullName.includes('[webgpu]')) this.gpu[bucket]++;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    // A file that failed outside any test (import error, crash) counts as one failure.
    const failedModules = modules.filter(
      (m) => m.state() === 'failed' && ![...m.children.allTests()].some((t) => t.result().state === 'failed'),
    ).length;
    const g = this.gpu;
    const a = this.all;
    console.log(`\nwebgpu tests run on ${process.env.WGNN_ADAPTER ?? 'the adapter'}: ${g.passed} passed, ${g.failed} failed, ${g.skipped} skipped`);
    console.log(`tests: ${a.passed} passed, ${a.failed + failedModules} failed, ${a.skipped} skipped`);
  }
}
