/**
 * axe-core's WCAG 2 A/AA rules run inside the page under test: the issue asks that the app be usable by
 * everyone, and contrast, names and labels are things a machine checks better than a reading of the CSS.
 * The engine is injected from node_modules (no network) and runs against the live DOM, so a page is
 * checked in the state the test has put it in (a selection, a held seat, an error shown).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AxeResults, RunOptions } from 'axe-core';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

/** Every WCAG 2.x success criterion at levels A and AA that axe-core has rules for. */
export const WCAG_AA_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

let axeSource: string | undefined;
const readAxeSource = () => {
  axeSource ??= fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  return axeSource;
};

/** One violation as a line a developer can act on: rule, impact, what it asks, and each failing node. */
export interface AxeFinding {
  rule: string;
  impact: string;
  help: string;
  nodes: { selector: string; html: string; why: string }[];
}

/** Options axe-core's `run` takes that its types leave out: per-check options. */
type AxeRunOptions = RunOptions & { checks?: Record<string, { options: object }> };

export async function axeFindings(
  page: Page,
  options: { isInactiveMeasured?: boolean } = {},
): Promise<AxeFinding[]> {
  // The app is a single page: after a client-side navigation axe is still there, so inject it once.
  const hasAxe = await page.evaluate(() => 'axe' in window);
  if (!hasAxe) await page.addScriptTag({ content: readAxeSource() });
  const runOptions: AxeRunOptions = {
    runOnly: { type: 'tag', values: WCAG_AA_TAGS },
    // By default axe leaves one-character text (a row label "A") and symbols (a seat's ✓ or ✕) to a
    // human when their contrast falls short; here they are measured like any other text.
    checks: { 'color-contrast': { options: { ignoreLength: true, ignoreUnicode: false } } },
  };
  return page.evaluate(
    async ({ runOptions, isInactiveMeasured }) => {
      const axe = (
        window as unknown as { axe: { run(ctx: Document, o: AxeRunOptions): Promise<AxeResults> } }
      ).axe;
      const report = (results: AxeResults) =>
        // Text whose contrast axe cannot measure (over a gradient or an image, say) is reported as
        // "incomplete", not as a violation: counted here, so that no text's contrast goes unchecked.
        [...results.violations, ...results.incomplete.filter((result) => result.id === 'color-contrast')];
      const found = report(await axe.run(document, runOptions));
      if (isInactiveMeasured) {
        // WCAG exempts inactive controls from contrast, so axe skips aria-disabled ones; but a held or
        // booked seat's label is still something people read. Measured as if active, then put back.
        const inactive = [...document.querySelectorAll('[aria-disabled="true"]')];
        for (const element of inactive) element.removeAttribute('aria-disabled');
        try {
          const contrastOnly = {
            ...runOptions,
            runOnly: { type: 'rule' as const, values: ['color-contrast'] },
          };
          found.push(...report(await axe.run(document, contrastOnly)));
        } finally {
          for (const element of inactive)
            if (!element.hasAttribute('aria-disabled')) element.setAttribute('aria-disabled', 'true');
        }
      }
      return found.map((violation) => ({
        rule: violation.id,
        impact: violation.impact ?? 'unknown',
        help: violation.help,
        nodes: violation.nodes.map((node) => ({
          selector: node.target.join(' '),
          html: node.html,
          why: `${node.failureSummary ?? ''} ${JSON.stringify(node.any[0]?.data ?? null)}`,
        })),
      }));
    },
    { runOptions, isInactiveMeasured: options.isInactiveMeasured ?? false },
  );
}

/**
 * Asserts the page, as it is now, has no WCAG 2 A/AA violations. Soft: a journey goes on to check its
 * later pages, so one run reports every page's findings at once.
 */
export async function expectAccessible(
  page: Page,
  pageName: string,
  options: { isInactiveMeasured?: boolean } = {},
): Promise<void> {
  const findings = await axeFindings(page, options);
  expect
    .soft(findings.map(describeFinding), `axe-core WCAG 2 AA violations on the ${pageName} page`)
    .toEqual([]);
}

function describeFinding(finding: AxeFinding): string {
  const nodes = finding.nodes.map(
    (node) => `  at ${node.selector}: ${node.html}\n    ${node.why.replace(/\n/g, ' ')}`,
  );
  return `${finding.rule} (${finding.impact}): ${finding.help}\n${nodes.join('\n')}`;
}
