// An independent implementation of docs/protocol.md, written from the document alone: it
// shares no code with the Python service. Libraries: ethers (keccak256, secp256k1 recovery,
// EIP-55), tweetnacl (ed25519), bs58 (base58), node:crypto (sha256). The EIP-712 encoding,
// canonical JSON, Merkle tree, journal hashing, arithmetic and export checks are written here.
import { createHash } from "node:crypto";
import { getAddress, keccak256, recoverAddress } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";

// ------------------------------------------------------------------------------ bytes, hashes

export const hex = (bytes) => Buffer.from(bytes).toString("hex");
export const fromHex = (s) => Uint8Array.from(Buffer.from(s.replace(/^0x/, ""), "hex"));
export const concat = (...parts) => Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))));
export const keccak = (bytes) => fromHex(keccak256(bytes));
export const sha256Hex = (bytes) => createHash("sha256").update(bytes).digest("hex");
export const utf8 = (s) => new TextEncoder().encode(s);
const UINT256_MAX = (1n << 256n) - 1n;

/** u256(x): 32 bytes big-endian. */
export function u256(x) {
  const n = BigInt(x);
  if (n < 0n || n > UINT256_MAX) throw new Error(`not a uint256: ${x}`);
  return fromHex(n.toString(16).padStart(64, "0"));
}

/** Code point order ("sorted" in the document), not UTF-16 unit order. */
export function compareCodePoints(a, b) {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d < 0 ? -1 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

function compareArrays(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareCodePoints(a[i], b[i]);
    if (c) return c;
  }
  return a.length - b.length;
}

// ------------------------------------------------------------------------------ canonical JSON

const SHORT = { 0x08: "\\b", 0x09: "\\t", 0x0a: "\\n", 0x0c: "\\f", 0x0d: "\\r" };

/** A JSON string literal. asciiOnly: the journal's form (everything from U+007F escaped as
 *  \uXXXX, astral characters as their surrogate pair). */
function quote(s, asciiOnly) {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp < 0x20) out += SHORT[cp] ?? "\\u" + cp.toString(16).padStart(4, "0");
    else if (asciiOnly && cp >= 0x7f) {
      for (let i = 0; i < ch.length; i++) out += "\\u" + ch.charCodeAt(i).toString(16).padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}

function serialize(value, asciiOnly) {
  if (Array.isArray(value)) return "[" + value.map((v) => serialize(v, asciiOnly)).join(",") + "]";
  if (value === null) return "null";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(compareCodePoints);
    return "{" + keys.map((k) => quote(k, asciiOnly) + ":" + serialize(value[k], asciiOnly)).join(",") + "}";
  }
  if (typeof value === "string") return quote(value, asciiOnly);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an exact integer: ${value}`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  throw new Error(`cannot serialize ${typeof value}`);
}

/** Canonical JSON (the text; encode with utf8 for the bytes). */
export const canonicalJson = (value) => serialize(value, false);
/** The journal's ASCII-only JSON. */
export const asciiJson = (value) => serialize(value, true);

// ------------------------------------------------------------------------------ addresses

export function isEvmAddress(s) {
  if (typeof s !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(s)) return false;
  try {
    return getAddress(s) === s;
  } catch {
    return false; // a mixed-case address whose checksum is wrong
  }
}

/** The bytes s is the base58 encoding of, only if s is exactly their encoding. */
export function base58Exact(s) {
  let raw;
  try {
    raw = bs58.decode(s);
  } catch {
    return null;
  }
  return bs58.encode(raw) === s ? raw : null;
}

export function isSolanaAddress(s) {
  if (typeof s !== "string" || s.length < 32 || s.length > 44) return false;
  const raw = base58Exact(s);
  return raw !== null && raw.length === 32;
}

// ------------------------------------------------------------------------------ EIP-712

export const SIGNER_FIELD = { PriceChange: "proposer", AllocationChange: "proposer", TreasurySpend: "proposer",
                              Vote: "voter", Cancel: "signer" };

/** The struct types `primary` references, directly or not, sorted by name. */
function dependencies(types, primary) {
  const deps = new Set();
  const todo = [primary];
  while (todo.length) {
    for (const f of types[todo.pop()]) {
      const base = f.type.replace(/\[\]$/, "");
      if (types[base] && base !== primary && !deps.has(base)) {
        deps.add(base);
        todo.push(base);
      }
    }
  }
  return [...deps].sort(compareCodePoints);
}

/** encodeType: the type, then every struct type it references, sorted by name. */
export function encodeType(types, primary) {
  const one = (name) => `${name}(` + types[name].map((f) => `${f.type} ${f.name}`).join(",") + ")";
  return one(primary) + dependencies(types, primary).map(one).join("");
}

/** The primary type and the types it references: what ethers' signTypedData wants. */
export const referencedTypes = (types, primary) =>
  Object.fromEntries([primary, ...dependencies(types, primary)].map((name) => [name, types[name]]));

export const typeHash = (types, name) => keccak(utf8(encodeType(types, name)));

function encodeField(types, type, value) {
  if (type === "string") return keccak(utf8(value));
  if (/^uint\d+$/.test(type)) return u256(value);
  if (type === "bytes32") return fromHex(value);
  if (type.endsWith("[]")) {
    const inner = type.slice(0, -2);
    return keccak(concat(...value.map((v) => encodeField(types, inner, v))));
  }
  if (types[type]) return hashStruct(types, type, value);
  throw new Error(`no encoding for ${type}`);
}

export function hashStruct(types, name, message) {
  return keccak(concat(typeHash(types, name), ...types[name].map((f) => encodeField(types, f.type, message[f.name]))));
}

export function domainSeparator(domain) {
  const domainType = "EIP712Domain(string name,string version,uint256 chainId,bytes32 salt)";
  return keccak(concat(keccak(utf8(domainType)), keccak(utf8(domain.name)), keccak(utf8(domain.version)),
                       u256(domain.chainId), fromHex(domain.salt)));
}

/** digest = keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct): the record id. */
export function digest(domain, types, primary, message) {
  return keccak(concat([0x19, 0x01], domainSeparator(domain), hashStruct(types, primary, message)));
}

/** What an ed25519 wallet signs. */
export function signedDocument(domain, primary, message) {
  const d = { name: domain.name, version: domain.version, chainId: domain.chainId, salt: domain.salt };
  return utf8(canonicalJson({ domain: d, message, type: primary }));
}

// ------------------------------------------------------------------------------ the JSON form

/** The problem with a value of an EIP-712 type in its JSON form, or null. */
function formProblem(types, type, value) {
  if (type === "string") return typeof value === "string" && value.isWellFormed() ? null : "not a string";
  if (type === "uint256") {
    return typeof value === "string" && /^(0|[1-9][0-9]*)$/.test(value) && BigInt(value) <= UINT256_MAX
      ? null : "not a uint256 decimal string";
  }
  const uint = /^uint(\d+)$/.exec(type);
  if (uint) {
    return Number.isInteger(value) && value >= 0 && BigInt(value) < 1n << BigInt(uint[1]) ? null : `not a ${type}`;
  }
  if (type === "bytes32") return typeof value === "string" && /^0x[0-9a-f]{64}$/.test(value) ? null : "not bytes32";
  if (type.endsWith("[]")) {
    if (!Array.isArray(value)) return "not an array";
    for (const item of value) {
      const p = formProblem(types, type.slice(0, -2), item);
      if (p) return p;
    }
    return null;
  }
  if (types[type]) return structProblem(types, type, value);
  return `unknown type ${type}`;
}

function structProblem(types, name, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return `${name} is not an object`;
  const fields = types[name].map((f) => f.name);
  for (const k of Object.keys(value)) if (!fields.includes(k)) return `unknown field ${k}`;
  for (const f of types[name]) {
    if (!(f.name in value)) return `missing field ${f.name}`;
    const p = formProblem(types, f.type, value[f.name]);
    if (p) return `${f.name}: ${p}`;
  }
  return null;
}

// ------------------------------------------------------------------------------ envelopes

const N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141n;

export class Refusal extends Error {
  constructor(status, code, detail) {
    super(`${status} ${code}: ${detail}`);
    this.status = status;
    this.code = code;
  }
}

/** Checks 0 and 2-7 of the document, in order. Returns {digest, signer}; throws a Refusal. */
export function verifyEnvelope(env, domain, types) {
  const keys = ["type", "scheme", "signer", "signature", "message"];
  if (env === null || typeof env !== "object" || Object.keys(env).some((k) => !keys.includes(k))
      || keys.slice(0, 4).some((k) => typeof env[k] !== "string") || !["eip712", "ed25519"].includes(env.scheme)
      || env.message === null || typeof env.message !== "object" || Array.isArray(env.message)) {
    throw new Refusal(400, "invalid_body", "not an envelope");
  }
  const family = env.scheme === "eip712" ? isEvmAddress(env.signer) : isSolanaAddress(env.signer);
  if (!family) throw new Refusal(400, "invalid_address", `signer ${env.signer}`);
  if (!(env.type in SIGNER_FIELD)) throw new Refusal(400, "unknown_type", env.type);
  const problem = structProblem(types, env.type, env.message);
  if (problem) throw new Refusal(400, "invalid_message", problem);
  if (env.message[SIGNER_FIELD[env.type]] !== env.signer) throw new Refusal(403, "signer_mismatch", env.signer);
  const id = digest(domain, types, env.type, env.message);
  if (env.scheme === "eip712") {
    if (!/^0x[0-9a-fA-F]{130}$/.test(env.signature)) throw new Refusal(400, "malformed_signature", "not 65 bytes");
    const raw = fromHex(env.signature);
    const r = BigInt("0x" + hex(raw.slice(0, 32))), s = BigInt("0x" + hex(raw.slice(32, 64))), v = raw[64];
    if (![0, 1, 27, 28].includes(v)) throw new Refusal(400, "malformed_signature", `v ${v}`);
    if (!(r > 0n && r < N && s > 0n && s < N)) throw new Refusal(400, "malformed_signature", "r or s out of range");
    if (s > N / 2n) throw new Refusal(400, "high_s_signature", "s in the upper half");
    let recovered;
    try {
      recovered = recoverAddress(id, { r: "0x" + hex(raw.slice(0, 32)), s: "0x" + hex(raw.slice(32, 64)),
                                       v: 27 + (v % 27) });
    } catch {
      throw new Refusal(403, "bad_signature", "no public key recovers");
    }
    if (recovered.toLowerCase() !== env.signer.toLowerCase()) throw new Refusal(403, "bad_signature", "another signer");
  } else {
    const sig = env.signature.length <= 88 ? base58Exact(env.signature) : null;
    if (sig === null || sig.length !== 64) throw new Refusal(400, "malformed_signature", "not base58 of 64 bytes");
    const ok = nacl.sign.detached.verify(signedDocument(domain, env.type, env.message), sig, base58Exact(env.signer));
    if (!ok) throw new Refusal(403, "bad_signature", "ed25519");
  }
  return { digest: "0x" + hex(id), signer: env.signer };
}

// ------------------------------------------------------------------------------ Merkle tree

export const EMPTY_ROOT = new Uint8Array(32);
export const leafHash = (x) => keccak(concat([0x00], x));
export function nodeHash(a, b) {
  const [lo, hi] = Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [a, b] : [b, a];
  return keccak(concat([0x01], lo, hi));
}

function nextLevel(level) {
  const up = [];
  for (let i = 0; i < level.length; i += 2) up.push(i + 1 < level.length ? nodeHash(level[i], level[i + 1]) : level[i]);
  return up;
}

export function merkleRoot(leaves) {
  if (!leaves.length) return EMPTY_ROOT;
  let level = leaves.map(leafHash);
  while (level.length > 1) level = nextLevel(level);
  return level[0];
}

export function inclusionProof(leaves, index) {
  let level = leaves.map(leafHash);
  const path = [];
  while (level.length > 1) {
    if ((index ^ 1) < level.length) path.push(level[index ^ 1]);
    level = nextLevel(level);
    index = Math.floor(index / 2);
  }
  return path;
}

export function verifyProof(leaf, path, root) {
  let h = leafHash(leaf);
  for (const s of path) h = nodeHash(h, s);
  return Buffer.compare(Buffer.from(h), Buffer.from(root)) === 0;
}

export const ballotLeaf = (voteId, weight) => concat(fromHex(voteId), u256(weight));
export function holderLeaf(address, balance) {
  const a = utf8(address);
  return concat([a.length], a, u256(balance));
}

// ------------------------------------------------------------------------------ journal

export const GENESIS = "0".repeat(64);

export function journalPreimage(entry, prev) {
  const postings = entry.postings.map((p) => [p.account, p.asset, String(p.amount)]).sort(compareArrays);
  return asciiJson({ seq: entry.seq, kind: entry.kind, reference: entry.reference, created_at: entry.created_at,
                     memo: entry.memo, prev, postings });
}

export const journalHash = (entry, prev) => sha256Hex(utf8(journalPreimage(entry, prev)));

/** The head after checking every link and hash; throws naming the first broken entry. */
export function verifyChain(entries) {
  let prev = GENESIS, seq = 0;
  for (const e of entries) {
    seq += 1;
    if (e.seq !== seq) throw new Error(`entry ${seq} is missing`);
    if (e.prev_hash !== prev) throw new Error(`entry ${seq}: prev_hash does not link`);
    if (journalHash(e, prev) !== e.hash) throw new Error(`entry ${seq}: hash does not match`);
    prev = e.hash;
  }
  return { seq, hash: prev };
}

// ------------------------------------------------------------------------------ arithmetic

export const tokensFor = (payment, price, decimals) => (BigInt(payment) * 10n ** BigInt(decimals)) / BigInt(price);

export function split(payment, allocation) {
  const p = BigInt(payment);
  const parts = {};
  let sum = 0n;
  for (const [bucket, bps] of Object.entries(allocation)) {
    parts[bucket] = (p * BigInt(bps)) / 10000n;
    sum += parts[bucket];
  }
  parts.treasury = (parts.treasury ?? 0n) + p - sum;
  return parts;
}

export function decide({ forVotes, against, abstain, supply, quorumBps, approvalBps }) {
  const quorum = (BigInt(quorumBps) * supply + 9999n) / 10000n;
  const quorumReached = forVotes + abstain >= quorum;
  const passed = quorumReached && forVotes * 10000n > BigInt(approvalBps) * (forVotes + against);
  return { quorum, quorumReached, outcome: passed ? "succeeded" : "defeated" };
}

/** Per voter the ballot that counts: greatest timestamp, then greatest id. */
export function effective(ballots) {
  const best = new Map();
  for (const b of ballots) {
    const cur = best.get(b.voter);
    if (!cur || b.timestamp > cur.timestamp || (b.timestamp === cur.timestamp && b.id > cur.id)) best.set(b.voter, b);
  }
  return [...best.values()].sort((a, b) => compareCodePoints(a.voter, b.voter));
}

// ------------------------------------------------------------------------------ export

/** Verify an export (docs/protocol.md, "The export, and verifying a proposal"). Returns
 *  {ok, problems, counted, totals, outcome, root}. */
export function verifyExport(doc) {
  const problems = [];
  if (typeof doc.format !== "string" || !doc.format.startsWith("ast-governance-export/")) {
    return { ok: false, problems: [`unknown format ${doc.format}`] };
  }
  const { domain, types } = doc;
  const pid = doc.proposal.id;
  try {
    const p = verifyEnvelope(doc.proposal.envelope, domain, types);
    if (p.digest !== pid) problems.push(`proposal id ${pid} is not the digest of its message`);
  } catch (e) {
    problems.push(`proposal: ${e.message}`);
  }
  const weights = doc.snapshot.weights;
  const ballots = [];
  doc.ballots.forEach((b, i) => {
    const label = `ballot ${b.seq ?? i + 1}`;
    let v;
    try {
      v = verifyEnvelope(b.envelope, domain, types);
    } catch (e) {
      problems.push(`${label}: ${e.message}`);
      return;
    }
    if (b.envelope.type !== "Vote") return problems.push(`${label}: not a Vote`);
    if (b.envelope.message.proposal !== pid) return problems.push(`${label}: votes on another proposal`);
    if (![0, 1, 2].includes(b.envelope.message.choice)) return problems.push(`${label}: choice is not 0, 1 or 2`);
    if (weights[v.signer] !== b.weight) problems.push(`${label}: weight ${b.weight} is not the snapshot's`);
    ballots.push({ id: v.digest, voter: v.signer, choice: b.envelope.message.choice, weight: BigInt(b.weight),
                   timestamp: b.envelope.message.timestamp });
  });
  const counted = effective(ballots);
  const totals = { for: 0n, against: 0n, abstain: 0n };
  for (const b of counted) totals[["against", "for", "abstain"][b.choice]] += b.weight;
  const root = "0x" + hex(merkleRoot(counted.map((b) => ballotLeaf(b.id, b.weight))));
  const d = decide({ forVotes: totals.for, against: totals.against, abstain: totals.abstain,
                     supply: BigInt(doc.snapshot.total), quorumBps: doc.proposal.rules.quorum_bps,
                     approvalBps: doc.proposal.rules.approval_bps });
  const mine = { for: String(totals.for), against: String(totals.against), abstain: String(totals.abstain),
                 voters: counted.length, outcome: d.outcome, quorum_reached: d.quorumReached, merkle_root: root };
  if (doc.result) {
    for (const [k, v] of Object.entries(mine)) {
      if (doc.result[k] !== v) problems.push(`result ${k}: export ${doc.result[k]}, recomputed ${v}`);
    }
  }
  return { ok: problems.length === 0, problems, counted: counted.map((b) => b.id), ...mine };
}
