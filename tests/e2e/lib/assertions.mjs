import assert from 'node:assert/strict';

/** Relative path of a home entry: manifest "home/<user>/a/b" -> "a/b" ("" for the dir itself). */
function relManifest(p, user) {
  const pre = `home/${user}`;
  return p === pre ? '' : p.startsWith(pre + '/') ? p.slice(pre.length + 1) : p;
}
/** Same for a name inside the downloaded tar, whichever root the page chose. */
function relTar(name, user) {
  for (const pre of [`dom0-home/${user}`, `home/${user}`, user]) {
    if (name === pre) return '';
    if (name.startsWith(pre + '/')) return name.slice(pre.length + 1);
  }
  return null;
}

/** Problems (strings) between the entries of a downloaded home tar and the manifest. */
export function homeTarProblems(entries, exp) {
  const problems = [];
  const got = new Map();
  for (const e of entries) {
    const r = relTar(e.name, exp.user);
    if (r === null) problems.push(`home tar: entry outside the home folder: ${e.name}`);
    else got.set(r, e);
  }
  for (const m of exp.entries) {
    const r = relManifest(m.path, exp.user);
    const g = got.get(r);
    if (!g) { if (r !== '') problems.push(`home tar: missing ${m.type} ${m.path}`); continue; }
    got.delete(r);
    if (g.type === 'hardlink' && m.type === 'file') {
      // A hard link in the tar is fine when it points at another name of the same inode
      // (manifest "hardlinks") and that entry has the right content.
      const t = relTar(g.target, exp.user);
      const group = (m.hardlinks || []).map((h) => relManifest(h, exp.user));
      const te = entries.find((e) => relTar(e.name, exp.user) === t);
      if (t === null || !group.includes(t)) problems.push(`home tar: ${m.path} is a hard link to ${g.target}, not to one of ${m.hardlinks || '[]'}`);
      else if (!te || te.type !== 'file' || te.sha256 !== m.sha256) problems.push(`home tar: hard link ${m.path} -> ${g.target}: target missing or differs`);
      continue;
    }
    if (g.type !== m.type) { problems.push(`home tar: ${m.path} is ${g.type}, expected ${m.type}`); continue; }
    if (m.type === 'file' && (g.sha256 !== m.sha256 || g.size !== m.size)) problems.push(`home tar: ${m.path} content differs (size ${g.size} vs ${m.size})`);
    if (m.type === 'symlink' && g.target !== m.target) problems.push(`home tar: symlink ${m.path} -> ${g.target}, expected ${m.target}`);
    if (m.mode && m.type !== 'symlink' && g.mode !== m.mode) problems.push(`home tar: ${m.path} mode ${g.mode}, expected ${m.mode}`);
  }
  for (const [r, g] of got) problems.push(`home tar: unexpected entry ${g.name}`);
  return problems;
}

/**
 * Compare downloads ({name: {sha256,size,tar?}|{error}}) with expected ones
 * (from manifest.expectedFiles). Unexpected names fail unless `allowExtra`.
 */
export function filesProblems(got, expected, { allowExtra = false } = {}) {
  const problems = [];
  for (const [name, exp] of Object.entries(expected)) {
    const g = got[name];
    if (!g) { problems.push(`missing download ${name}`); continue; }
    if (g.error) { problems.push(`download ${name} failed: ${g.error}`); continue; }
    if (exp.kind === 'present') {
      if (!(g.size > 0)) problems.push(`${name}: empty`);
    } else if (exp.kind === 'home-tar') {
      if (!g.tar) problems.push(`${name}: could not read as tar (${g.tarError || 'not parsed'})`);
      else problems.push(...homeTarProblems(g.tar, exp));
    } else if (g.size !== exp.size) {
      problems.push(`${name}: got size ${g.size}, expected ${exp.size}`);
    } else if (exp.sha256) {
      if (g.sha256 !== exp.sha256) problems.push(`${name}: sha256 ${g.sha256}, expected ${exp.sha256}`);
    } else if (exp.runs) {
      // Huge images: the manifest lists the data runs (everything else is zero) instead of a hash.
      const a = JSON.stringify(g.runs), b = JSON.stringify(exp.runs.map(({ offset, length, sha256 }) => ({ offset, length, sha256 })));
      if (a !== b) problems.push(`${name}: data runs differ\n      got      ${a.slice(0, 600)}\n      expected ${b.slice(0, 600)}`);
    } else problems.push(`${name}: the manifest gives neither sha256 nor runs`);
  }
  if (!allowExtra) for (const name of Object.keys(got)) if (!(name in expected)) problems.push(`unexpected download ${name}`);
  return problems;
}

export function assertFilesMatch(got, expected, { allowExtra = false, context = '' } = {}) {
  const problems = filesProblems(got, expected, { allowExtra });
  if (problems.length) assert.fail(`${problems.length} problem(s) with downloads:\n  ${problems.join('\n  ')}\n--- page state ---\n${context}`);
}

/**
 * The page's one archive among the downloads ({name: inspectDownload result}): exactly one
 * download, named qubes-rescue-….tar, whose members GNU tar and bsdtar extract to exactly the
 * expected files, volume holes left as holes on disk. Returns the archive's download entry.
 */
export function assertArchiveMatches(got, expected, { context = '' } = {}) {
  const names = Object.keys(got);
  assert.equal(names.length, 1, `one download expected, got ${names.join(', ')}\n${context}`);
  assert.match(names[0], /^qubes-rescue-.*\.tar$/, context);
  const a = got[names[0]];
  assert.ok(!a.error && a.archive, `the archive was not downloaded or read: ${a.error || a.tarError}\n${context}`);
  const problems = [...a.archive.problems, ...filesProblems(a.archive.members, expected)];
  for (const [name, m] of Object.entries(a.archive.members)) {
    if (m.bsdtar !== 'same') problems.push(`${name}: bsdtar extracted other bytes than GNU tar (${m.bsdtar})`);
    const exp = expected[name];
    const data = exp?.runs ? exp.runs.reduce((s, r) => s + r.length, 0) : null;
    if (data !== null && exp.size > 64 << 20 && m.disk > data + (8 << 20)) {
      problems.push(`${name}: ${m.disk} bytes on disk for ${data} bytes of data: its holes were written as zeros`);
    }
  }
  if (problems.length) assert.fail(`${problems.length} problem(s) with the archive:\n  ${problems.join('\n  ')}\n--- page state ---\n${context}`);
  return a;
}
