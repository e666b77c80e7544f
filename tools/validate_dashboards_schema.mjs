#!/usr/bin/env node
// Validates dashboards/*.json against Grafana's published schema: the TypeScript types that the
// npm package @grafana/schema ships (it ships no JSON Schema). Each dashboard is written into a
// TypeScript file as an object literal typed with those types and checked with `tsc --noEmit`,
// so a misspelt or unknown key, a wrong type or a missing required option is an error.
//
//   node tools/validate_dashboards_schema.mjs [dashboards/x.json ...]
//
// Needs node and npm and the npm registry: installs @grafana/schema and typescript (versions
// pinned below; override with GRAFANA_SCHEMA_VERSION / TYPESCRIPT_VERSION) into a temporary
// directory that is removed afterwards (kept with KEEP_TMP=1).
//
// What is checked, per dashboard:
//   - the whole dashboard against `Dashboard` (the classic model: panels, templating, links, ...),
//     with annotations typed as Prometheus annotations (the fields grafana-prometheus reads);
//   - each panel's `options` and `fieldConfig.defaults.custom` against that panel plugin's
//     `Options` / `FieldConfig` (raw/composable/<plugin>/panelcfg);
//   - each target against the Prometheus query fields (PromQuery: expr, refId, format, ...);
//   - schemaVersion equal to the package's defaultDashboard.schemaVersion.
// Enum-typed fields accept their string values (JSON has no enums): see `Lit` below.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCHEMA_VERSION = process.env.GRAFANA_SCHEMA_VERSION || '13.2.3';
const TS_VERSION = process.env.TYPESCRIPT_VERSION || '5.9.3';

// panel type -> @grafana/schema panelcfg module (export path) for its Options, and whether it
// exports a FieldConfig for fieldConfig.defaults.custom (stat and bargauge have none: custom
// must then be empty).
const PANELCFG = {
  'bargauge': ['bargauge/panelcfg/x/BarGaugePanelCfg_types.gen', false],
  'heatmap': ['heatmap/panelcfg/x/HeatmapPanelCfg_types.gen', true],
  'stat': ['stat/panelcfg/x/StatPanelCfg_types.gen', false],
  'state-timeline': ['statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen', true],
  'table': ['table/panelcfg/x/TablePanelCfg_types.gen', true],
  'timeseries': ['timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen', true],
};

const PRELUDE = `import type { Dashboard, AnnotationQuery, DataSourceRef } from '@grafana/schema';

// JSON carries enum members as their values: map every string enum to its string literals.
type Lit<T> = T extends string ? \`\${T}\`
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Lit<U>>
  : T extends object ? { [K in keyof T]: Lit<T[K]> }
  : T;

// The Prometheus query fields (grafana-prometheus PromQuery); unknown keys are errors.
export interface PromTarget {
  datasource?: DataSourceRef;
  editorMode?: 'code' | 'builder';
  exemplar?: boolean;
  expr: string;
  format?: 'time_series' | 'table' | 'heatmap';
  hide?: boolean;
  instant?: boolean;
  interval?: string;
  legendFormat?: string;
  range?: boolean;
  refId: string;
}

// Annotation fields the Prometheus datasource reads (grafana-prometheus annotations.ts).
export type PromAnnotation = Lit<AnnotationQuery> & {
  expr: string;
  step?: string;
  tagKeys?: string;
  textFormat?: string;
  titleFormat?: string;
  useValueForTime?: boolean;
};

export type CheckedDashboard = Lit<Omit<Dashboard, 'annotations'>> & {
  annotations?: { list?: PromAnnotation[] };
};
`;

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
}

function lit(value) {
  return JSON.stringify(value, null, 2);
}

function checksFor(base, dash) {
  const files = {};
  files[`${base}.dashboard.ts`] =
    `import type { CheckedDashboard } from './prelude';\nexport const d: CheckedDashboard = ${lit(dash)};\n`;
  for (const p of dash.panels || []) {
    const [mod, hasCustom] = PANELCFG[p.type] || [];
    const name = `${base}.panel-${String(p.id).padStart(2, '0')}`;
    if (!mod) {
      files[`${name}.unknown.ts`] = `// no panelcfg types for panel type ${JSON.stringify(p.type)}\nexport const x: never = 1;\n`;
      continue;
    }
    files[`${name}.ts`] = [
      `// ${dash.title} / ${p.title} (${p.type})`,
      `import type { Options${hasCustom ? ', FieldConfig' : ''} } from '@grafana/schema/dist/esm/raw/composable/${mod}';`,
      `import type { PromTarget } from './prelude';`,
      `type Lit<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T : T extends Array<infer U> ? Array<Lit<U>> : T extends object ? { [K in keyof T]: Lit<T[K]> } : T;`,
      `export const options: Lit<Options> = ${lit(p.options ?? {})};`,
      `export const custom: ${hasCustom ? 'Lit<FieldConfig>' : 'Record<string, never>'} = ${lit(p.fieldConfig?.defaults?.custom ?? {})};`,
      `export const targets: PromTarget[] = ${lit(p.targets ?? [])};`,
      '',
    ].join('\n');
  }
  return files;
}

async function main() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const inputs = process.argv.slice(2);
  const dashboards = inputs.length
    ? inputs
    : fs.readdirSync(path.join(here, '..', 'dashboards'))
        .filter((f) => f.endsWith('.json')).sort()
        .map((f) => path.join(here, '..', 'dashboards', f));

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'failbackd-schema-'));
  let failed = false;
  try {
    fs.writeFileSync(path.join(tmp, 'package.json'), '{"private": true, "type": "module"}\n');
    console.log(`installing @grafana/schema@${SCHEMA_VERSION} typescript@${TS_VERSION} into ${tmp}`);
    sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error',
      `@grafana/schema@${SCHEMA_VERSION}`, `typescript@${TS_VERSION}`], { cwd: tmp });

    const schema = await import(pathToFileURL(path.join(tmp, 'node_modules/@grafana/schema/dist/esm/index.mjs')));
    const want = schema.defaultDashboard.schemaVersion;

    const src = path.join(tmp, 'checks');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'prelude.ts'), PRELUDE);
    for (const file of dashboards) {
      const dash = JSON.parse(fs.readFileSync(file, 'utf8'));
      const base = path.basename(file, '.json');
      if (dash.schemaVersion !== want) {
        console.error(`${file}: schemaVersion ${dash.schemaVersion}, @grafana/schema@${SCHEMA_VERSION} has ${want}`);
        failed = true;
      }
      for (const [name, text] of Object.entries(checksFor(base, dash))) {
        fs.writeFileSync(path.join(src, name), text);
      }
    }
    fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler',
        skipLibCheck: true, types: [],
      },
      include: ['checks/*.ts'],
    }, null, 2));
    const tsc = path.join(tmp, 'node_modules/typescript/bin/tsc');
    try {
      sh(process.execPath, [tsc, '-p', tmp, '--pretty', 'false'], { cwd: tmp });
    } catch (e) {
      // Errors name the generated file: <dashboard>.dashboard.ts or <dashboard>.panel-<id>.ts.
      process.stderr.write(String(e.stdout || '') + String(e.stderr || ''));
      failed = true;
    }
    const n = fs.readdirSync(src).length - 1;
    console.log(`${dashboards.length} dashboards, ${n} checks against @grafana/schema@${SCHEMA_VERSION}: ` +
      (failed ? 'FAILED' : 'OK'));
  } finally {
    if (process.env.KEEP_TMP) console.log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
