/**
 * `lvs-xdp import keepalived`: reads a keepalived.conf with its includes (parse.ts), translates
 * it (translate.ts) and renders lvs-xdp's configuration file, validated as `apply` / `run` read it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { isSeq, parseDocument, visit, type Scalar } from 'yaml';
import { hostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import { formatConfigYaml, parseConfigText } from '../../config/index.js';
import { healthPlan } from '../../ops/spec.js';
import { KeepalivedSyntaxError, parseKeepalived, type ParseHooks } from './parse.js';
import { translateKeepalived, formatItem, type ImportResult, type TranslateOptions } from './translate.js';

export { parseKeepalived, tokenizeLine, KeepalivedSyntaxError, type Statement, type ParseHooks } from './parse.js';
export { translateKeepalived, formatItem, FWMARK_NAT_REASON, SORRY_NAT_REASON, type ImportItem, type ImportResult } from './translate.js';

export interface ImportOptions extends TranslateOptions {
  /** keepalived's -i: which `@ID` conditional lines apply (default: the host name's first label, as keepalived). */
  configId?: string;
}

export interface ImportOutput extends ImportResult {
  /** The configuration file (YAML), already validated. */
  text: string;
  files: string[];
}

export function fsHooks(configId?: string): ParseHooks {
  return {
    read: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    list: (d) => {
      try {
        return readdirSync(d);
      } catch {
        return undefined;
      }
    },
    configId: configId ?? hostname().split('.')[0],
  };
}

/** Status lists and argvs on one line each, as an operator writes them. */
function compactLists(yaml: string): string {
  const doc = parseDocument(yaml);
  visit(doc, {
    Pair(_, pair) {
      const key = String((pair.key as Scalar | null)?.value ?? '');
      if (isSeq(pair.value) && (key === 'expect-status' || key === 'command' || /^(realserver|service|quorum)-(up|down)$/.test(key))) pair.value.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0 });
}

/** Reads, translates and renders; a syntax error is a ConfigError naming file:line. */
export function importKeepalived(path: string, opts: ImportOptions = {}, hooks: ParseHooks = fsHooks(opts.configId)): ImportOutput {
  let parsed;
  try {
    parsed = parseKeepalived(path, hooks);
  } catch (e) {
    if (e instanceof KeepalivedSyntaxError) {
      throw new ConfigError(e.problem, { location: e.line ? `${e.file}:${e.line}` : e.file });
    }
    throw e;
  }
  const r = translateKeepalived(parsed.statements, parsed.notes, opts);
  const header = [
    `# lvs-xdp configuration imported from ${path} (lvs-xdp import keepalived)`,
    ...(r.items.length ? [`# ${r.items.filter((i) => i.kind === 'dropped').length} item(s) not carried over, ${r.items.filter((i) => i.kind === 'changed').length} changed:`, ...r.items.map((i) => `#   ${formatItem(i).replace(/\n/g, ' ')}`)] : []),
    ...(r.config.services.length === 0 ? [`# no virtual service carried over (${r.virtualServers === 0 ? 'the file has no virtual_server block' : 'see above'}): an empty service list`] : []),
  ].join('\n');
  const text = `${header}\n${compactLists(formatConfigYaml(r.config))}`;
  // The output must be a file lvs-xdp reads as it stands: a failure here is a bug of the import.
  healthPlan(parseConfigText(text, 'imported configuration'));
  return { ...r, text, files: parsed.files };
}
