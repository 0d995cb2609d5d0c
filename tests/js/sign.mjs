// An independent signer for test vectors: ethers (EIP-712) and tweetnacl (ed25519), with its
// own canonical JSON. Nothing here comes from the Python code under test but the job itself.
//
// stdin:  {"domain": {name, version, chainId, salt},
//          "types": {...all types, EIP712Domain included, as GET /v1/signing serves them...},
//          "items": [{"scheme": "eip712" | "ed25519",
//                     "privateKey": "0x…32 bytes" (eip712) | "…32-byte seed hex" (ed25519),
//                     "primaryType": "Vote", "message": {...}}]}
// stdout: [{type, scheme, signer, signature, message, digest, canonical?}] — one envelope per item,
//         plus ethers' EIP-712 digest (the record id for both schemes) and, for ed25519, the
//         exact document signed.
import { TypedDataEncoder, Wallet } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";

// ethers wants only the primary type and the types it references, without EIP712Domain
// (it refuses unused types), as a wallet integration would trim them
function referenced(types, primary) {
  const out = {};
  const todo = [primary];
  while (todo.length) {
    const name = todo.pop();
    if (out[name]) continue;
    if (!types[name]) throw new Error(`unknown type ${name}`);
    out[name] = types[name];
    for (const field of types[name]) {
      const base = field.type.replace(/(\[\d*\])+$/, "");
      if (types[base] && base !== "EIP712Domain") todo.push(base);
    }
  }
  return out;
}

// Canonical JSON: keys sorted at every level (written here, not borrowed), no whitespace.
// JSON.stringify on scalars leaves non-ASCII as is and escapes what JSON requires.
function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new Error(`number ${value} cannot round-trip through JSON in JavaScript`);
  }
  return JSON.stringify(value);
}

const hexToBytes = (hex) => Uint8Array.from(Buffer.from(hex.replace(/^0x/, ""), "hex"));

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function signItem(job, item) {
  const types = referenced(job.types, item.primaryType);
  const digest = TypedDataEncoder.hash(job.domain, types, item.message);
  if (item.scheme === "eip712") {
    const wallet = new Wallet(item.privateKey);
    const signature = await wallet.signTypedData(job.domain, types, item.message);
    return { type: item.primaryType, scheme: "eip712", signer: wallet.address, signature,
             message: item.message, digest };
  }
  if (item.scheme === "ed25519") {
    const seed = hexToBytes(item.privateKey);
    if (seed.length !== 32) throw new Error("an ed25519 seed is 32 bytes");
    const pair = nacl.sign.keyPair.fromSeed(seed);
    const doc = canonical({ domain: job.domain, message: item.message, type: item.primaryType });
    const signature = nacl.sign.detached(new TextEncoder().encode(doc), pair.secretKey);
    return { type: item.primaryType, scheme: "ed25519", signer: bs58.encode(pair.publicKey),
             signature: bs58.encode(signature), message: item.message, digest, canonical: doc };
  }
  throw new Error(`unknown scheme ${item.scheme}`);
}

try {
  const job = JSON.parse(await readStdin());
  const out = [];
  for (const item of job.items) out.push(await signItem(job, item));
  process.stdout.write(JSON.stringify(out));
} catch (err) {
  process.stderr.write(`sign.mjs: ${err.stack || err}\n`);
  process.exit(1);
}
