/**
 * Checks of `kinds`: each kind's buckets in order, their names, upstream URLs, weights, states
 * and hub APIs, and that `default_kind` names one of them.
 */
import type { BucketState } from '../core/policy.js';
import { hubApi } from './check-ops.js';
import {
  NAME_PATTERN,
  NAME_RULE,
  type Problems,
  UPSTREAM_HOST,
  describe,
  enumKey,
  headerSafeUrl,
  isObject,
  strKey,
  unknownKeys,
} from './rules.js';
import type { BucketConfig, KindConfig, RawConfig } from './types.js';

export function upstream(p: Problems, v: unknown, key: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') {
    p.add(key, `must be an http:// or https:// URL, got ${describe(v)}`);
    return null;
  }
  if (!headerSafeUrl(p, key, v)) return null;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    p.add(key, `must be an http:// or https:// URL, got ${describe(v)}`);
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    p.add(key, `must use http:// or https://, got ${describe(v)}`);
  if (url.username || url.password) p.add(key, 'must not contain credentials');
  if (url.search || url.hash) p.add(key, 'must not have a query or fragment');
  // WHATWG URLs accept hosts such as "a;b" or "a{b}$c"; no real host has them, and this URL
  // is rendered into nginx configuration (sharder nginx-config), so refuse them here.
  if (!UPSTREAM_HOST.test(url.hostname))
    p.add(
      key,
      `host ${JSON.stringify(url.hostname)} is not a host name or IP address (letters, digits, ".", "-", "_")`,
    );
  return v.replace(/\/+$/, '');
}

export function bucket(p: Problems, v: unknown, key: string): BucketConfig | undefined {
  if (!isObject(v)) {
    p.add(key, `must be a mapping with at least a name, got ${describe(v)}`);
    return undefined;
  }
  unknownKeys(p, v, key, 'kinds.*.buckets[]');
  let name = '';
  if (typeof v.name !== 'string' || !NAME_PATTERN.test(v.name))
    p.add(`${key}.name`, `${NAME_RULE}, got ${describe(v.name)}`);
  else name = v.name;
  const weightRow = p.keys.row('kinds.*.buckets[].weight');
  const maxWeight = weightRow.range![1];
  let weight = weightRow.default as number;
  if (v.weight !== undefined) {
    if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight <= 0 || v.weight > maxWeight) {
      p.add(`${key}.weight`, `must be a number greater than 0 (at most ${maxWeight}), got ${describe(v.weight)}`);
    } else weight = v.weight;
  }
  const state = enumKey<BucketState>(p, v.state, `${key}.state`, 'kinds.*.buckets[].state');
  return {
    name,
    upstream: upstream(p, v.upstream, `${key}.upstream`),
    weight,
    state,
    hubApi: hubApi(p, v.hub_api, `${key}.hub_api`),
  };
}

export function kinds(p: Problems, raw: RawConfig): Map<string, KindConfig> {
  const out = new Map<string, KindConfig>();
  const v = raw.kinds;
  if (!isObject(v) || Object.keys(v).length === 0) {
    p.add(
      'kinds',
      `must map each kind to its buckets (e.g. kinds: { hub: { buckets: [ { name: hub-0 } ] } }), got ${describe(v)}`,
    );
    return out;
  }
  for (const [kindName, kindRaw] of Object.entries(v)) {
    const key = `kinds.${kindName}`;
    if (!NAME_PATTERN.test(kindName)) p.add(key, `is not a valid kind name: ${NAME_RULE}`);
    if (!isObject(kindRaw)) {
      p.add(key, `must be a mapping with a buckets list, got ${describe(kindRaw)}`);
      continue;
    }
    unknownKeys(p, kindRaw, key, 'kinds.*');
    const list = kindRaw.buckets;
    if (!Array.isArray(list) || list.length === 0) {
      p.add(`${key}.buckets`, `must be a non-empty list of buckets, got ${describe(list)}`);
      continue;
    }
    const buckets: BucketConfig[] = [];
    const seen = new Map<string, number>();
    list.forEach((b, i) => {
      const bc = bucket(p, b, `${key}.buckets[${i}]`);
      if (!bc) return;
      if (bc.name !== '') {
        const first = seen.get(bc.name);
        if (first !== undefined)
          p.add(
            `${key}.buckets[${i}].name`,
            `duplicate bucket name "${bc.name}" (also at buckets[${first}]): bucket names must be unique within a kind`,
          );
        else seen.set(bc.name, i);
      }
      buckets.push(bc);
    });
    out.set(kindName, { name: kindName, buckets });
  }
  return out;
}

/** `default_kind`: must be one of the kinds. */
export function defaultKind(p: Problems, v: unknown, kinds: ReadonlyMap<string, KindConfig>): string {
  const name = strKey(p, v, 'default_kind');
  if (kinds.size > 0 && !kinds.has(name)) {
    p.add('default_kind', `names kind "${name}", which is not under kinds (have: ${[...kinds.keys()].join(', ')})`);
  }
  return name;
}
