/** Reading the shipped deployment files (systemd unit, Dockerfile, compose file) in tests. */

/** A systemd unit file as section → key → values (a key may repeat). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

/** Absolute paths the install guide, the unit and the image use, moved under a test root. */
const SYSTEM_PATHS = /(?<![\w./-])(\/opt\/sharder|\/etc\/sharder|\/var\/lib\/sharder|\/usr\/local\/bin)(?=[/\s'"]|$)/g;

export function underRoot(text: string, root: string): string {
  return text.replace(SYSTEM_PATHS, (p) => `${root}${p}`);
}

/** A page's shell blocks marked `<!-- tested: ... -->` on the line before their fence. */
export function testedBlocks(readme: string): string[] {
  const blocks: string[] = [];
  const re = /<!-- tested:[^>]*-->\n```sh\n([\s\S]*?)```/g;
  for (let m = re.exec(readme); m; m = re.exec(readme)) blocks.push(m[1]!);
  return blocks;
}

export interface DockerStage {
  from: string;
  name: string | undefined;
  /** Instruction (upper case) and its argument text, continuation lines joined. */
  instructions: { op: string; args: string }[];
}

/** Splits a Dockerfile into stages of instructions (enough for our own Dockerfile). */
export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const sp = line.indexOf(' ');
    const op = line.slice(0, sp).toUpperCase();
    const args = line.slice(sp + 1).trim();
    if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ op, args });
    }
  }
  return stages;
}

/** The exec-form (JSON array) argument of an instruction of a stage (the last one wins). */
export function execForm(stage: DockerStage, op: string): string[] | undefined {
  const found = stage.instructions.filter((i) => i.op === op).at(-1);
  return found ? (JSON.parse(found.args) as string[]) : undefined;
}
