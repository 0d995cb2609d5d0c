// Reproduces every conformance vector of docs/vectors/ with the independent implementation in
// protocol.mjs (and, for the digests, ethers' own EIP-712 encoder and signers as a second
// opinion, as a frontend would use them).
//
//   node tests/js/protocol/run.mjs [VECTOR_DIR]
// stdout: {"signing.json": <values checked>, …}; exit 1 with every mismatch on stderr.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TypedDataEncoder, Wallet } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";
import * as P from "./protocol.mjs";

const dir = process.argv[2] ?? new URL("../../../docs/vectors/", import.meta.url).pathname;
const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
const failures = [];
const counts = {};
let file = "";

function eq(what, mine, expected) {
  counts[file] = (counts[file] ?? 0) + 1;
  const a = JSON.stringify(mine, (_, v) => (typeof v === "bigint" ? v.toString() : v));
  const b = JSON.stringify(expected);
  if (a !== b) failures.push(`${file}: ${what}: computed ${a}, the vector says ${b}`);
}

const h = (bytes) => "0x" + P.hex(bytes);

function attempt(env, domain, types) {
  try {
    return { accepted: true, digest: P.verifyEnvelope(env, domain, types).digest };
  } catch (e) {
    if (!(e instanceof P.Refusal)) throw e;
    return { accepted: false, status: e.status, code: e.code };
  }
}

async function signing() {
  file = "signing.json";
  const v = load(file);
  const { domain, types } = v;
  eq("EIP712Domain encodeType", P.encodeType(types, "EIP712Domain"), v.eip712DomainType);
  eq("EIP712Domain typeHash", h(P.typeHash(types, "EIP712Domain")), v.eip712DomainTypeHash);
  eq("domain separator", h(P.domainSeparator(domain)), v.domainSeparator);
  eq("domain separator (ethers)", TypedDataEncoder.hashDomain(domain), v.domainSeparator);
  const wallet = new Wallet(v.keys.eip712[0].privateKey);
  eq("eip712 key's address", wallet.address, v.keys.eip712[0].address);
  const pair = nacl.sign.keyPair.fromSeed(P.fromHex(v.keys.ed25519[0].seed));
  eq("ed25519 key's address", bs58.encode(pair.publicKey), v.keys.ed25519[0].address);
  for (const c of v.cases) {
    const what = `${c.envelope.scheme} ${c.type}`;
    eq(`${what} encodeType`, P.encodeType(types, c.type), c.encodeType);
    eq(`${what} typeHash`, h(P.typeHash(types, c.type)), c.typeHash);
    eq(`${what} hashStruct`, h(P.hashStruct(types, c.type, c.message)), c.hashStruct);
    eq(`${what} digest`, h(P.digest(domain, types, c.type, c.message)), c.digest);
    eq(`${what} digest (ethers)`, TypedDataEncoder.hash(domain, P.referencedTypes(types, c.type), c.message), c.digest);
    eq(`${what} canonical JSON`, P.hex(P.signedDocument(domain, c.type, c.message)), c.canonical_hex);
    eq(`${what} verifies`, attempt(c.envelope, domain, types), { accepted: true, digest: c.digest });
    if (c.envelope.scheme === "eip712") {  // RFC 6979: the same key signs the same bytes
      eq(`${what} signature`, wallet.signingKey.sign(c.digest).serialized, c.envelope.signature);
    } else {
      const sig = nacl.sign.detached(P.fromHex(c.canonical_hex), pair.secretKey);
      eq(`${what} signature`, bs58.encode(sig), c.envelope.signature);
    }
  }
  for (const r of v.refusals) eq(`refusal: ${r.why}`, attempt(r.envelope, domain, types), r.expected);
}

function trees(v, kind, rows, leafOf, keyOf, orderName) {
  for (const t of v[kind]) {
    const what = `${kind} n=${t.n}`;
    const ordered = [...t[rows]].sort((a, b) => P.compareCodePoints(keyOf(a), keyOf(b)));
    eq(`${what} order`, ordered.map(keyOf), t[orderName]);
    const leaves = ordered.map(leafOf);
    eq(`${what} leaves`, leaves.map(P.hex), t.leaves);
    eq(`${what} leaf hashes`, leaves.map((x) => h(P.leafHash(x))), t.leafHashes);
    const root = P.merkleRoot(leaves);
    eq(`${what} root`, h(root), t.root);
    for (const p of t.proofs) {
      eq(`${what} proof ${p.index}`, { leaf: P.hex(leaves[p.index]), path: P.inclusionProof(leaves, p.index).map(h) },
         { leaf: p.leaf, path: p.path });
      eq(`${what} proof ${p.index} checks`, P.verifyProof(P.fromHex(p.leaf), p.path.map(P.fromHex), root), true);
    }
  }
}

function merkle() {
  file = "merkle.json";
  const v = load(file);
  const types = load("signing.json").types;
  eq("empty root", h(P.merkleRoot([])), v.emptyRoot);
  for (const t of v.ballotTrees) {
    for (const b of t.ballots) {
      eq(`ballot id of ${b.voter}`, h(P.digest(v.domain, types, "Vote", b.vote)), b.id);
      eq(`ballot voter ${b.voter}`, b.vote.voter, b.voter);
    }
  }
  trees(v, "ballotTrees", "ballots", (b) => P.ballotLeaf(b.id, b.weight), (b) => b.voter, "voterOrder");
  trees(v, "holderTrees", "holders", (x) => P.holderLeaf(x.address, x.balance), (x) => x.address, "addressOrder");
  for (const b of v.badProofs) {
    eq(`bad proof: ${b.why}`, P.verifyProof(P.fromHex(b.leaf), b.path.map(P.fromHex), P.fromHex(b.root)), false);
  }
}

function journal() {
  file = "journal.json";
  const v = load(file);
  eq("genesis", P.GENESIS, v.genesis);
  let prev = P.GENESIS;
  for (const e of v.entries) {
    eq(`entry ${e.seq} preimage`, P.journalPreimage(e, prev), e.preimage);
    eq(`entry ${e.seq} hash`, P.journalHash(e, prev), e.hash);
    eq(`entry ${e.seq} prev_hash`, e.prev_hash, prev);
    prev = e.hash;
  }
  let head;
  try {
    head = P.verifyChain(v.entries);
  } catch (e) {
    head = e.message;
  }
  eq("head", head, v.head);
  const altered = structuredClone(v.entries);
  altered[1].postings[0].amount = String(BigInt(altered[1].postings[0].amount) - 1n);
  let broken = null;
  try {
    P.verifyChain(altered);
  } catch (e) {
    broken = e.message;
  }
  eq("an altered posting breaks the chain at its entry", broken, "entry 2: hash does not match");
}

function arithmetic() {
  file = "arithmetic.json";
  const v = load(file);
  for (const p of v.purchases) eq(`tokens for ${p.payment} at ${p.price}`, String(P.tokensFor(p.payment, p.price, p.decimals)), p.tokens);
  for (const s of v.splits) {
    const parts = Object.fromEntries(Object.entries(P.split(s.payment, s.allocation)).map(([b, x]) => [b, String(x)]));
    const sorted = (o) => Object.fromEntries(Object.entries(o).sort());
    eq(`split of ${s.payment}`, sorted(parts), sorted(s.parts));
  }
  for (const t of v.tallies) {
    const d = P.decide({ forVotes: BigInt(t.for), against: BigInt(t.against), abstain: BigInt(t.abstain),
                         supply: BigInt(t.supply), quorumBps: t.quorum_bps, approvalBps: t.approval_bps });
    eq(`tally ${JSON.stringify(t)}`, { quorum: String(d.quorum), quorum_reached: d.quorumReached, outcome: d.outcome },
       { quorum: t.quorum, quorum_reached: t.quorum_reached, outcome: t.outcome });
  }
}

function exported() {
  file = "export.json";
  const v = load(file);
  const r = P.verifyExport(v.export);
  const e = v.expected;
  eq("export verifies", r.problems, []);
  eq("export recount", { ok: r.ok, ballots: v.export.ballots.length, outcome: r.outcome, counted: [...r.counted].sort(),
                         for: r.for, against: r.against, abstain: r.abstain, voters: r.voters, merkle_root: r.merkle_root },
     { ok: e.ok, ballots: e.ballots, outcome: e.outcome, counted: e.counted, for: e.for, against: e.against,
       abstain: e.abstain, voters: e.voters, merkle_root: e.merkle_root });
  eq("the tie's winner counts", r.counted.includes(e.tieWinner), true);
  const later = structuredClone(v.export);
  later.format = "ast-governance-export/99";
  later.journal = { entries: [] };  // a later version's extra field: ignored
  eq("a later format with extra fields verifies", P.verifyExport(later).ok, true);
  for (const d of v.doctored) eq(`doctored: ${d.why}`, { ok: P.verifyExport(d.export).ok }, d.expected);
}

await signing();
merkle();
journal();
arithmetic();
exported();
if (failures.length) {
  process.stderr.write(failures.join("\n") + "\n");
  process.exit(1);
}
process.stdout.write(JSON.stringify(counts) + "\n");
