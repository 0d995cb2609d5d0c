// An independent signer for the test vectors: ethers (EIP-712) and tweetnacl (ed25519),
// with its own canonical JSON. Reads a job on stdin, prints the signed envelopes on stdout.
//   job: {"domain": {...}, "types": {...all types...}, "items": [{"scheme", "privateKey", "primaryType", "message"}]}
import { Wallet } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => (data += c));
  process.stdin.on("end", () => resolve(data));
}));

// ethers wants the primary type and what it references, without EIP712Domain
function referenced(types, primary) {
  const out = {};
  const todo = [primary];
  while (todo.length) {
    const name = todo.pop();
    if (out[name]) continue;
    out[name] = types[name];
    for (const f of types[name]) {
      const base = f.type.replace(/\[\]$/, "");
      if (types[base] && base !== "EIP712Domain") todo.push(base);
    }
  }
  return out;
}

// keys sorted at every level, no whitespace; JSON.stringify keeps non-ASCII as is
function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

const hexToBytes = (hex) => Uint8Array.from(Buffer.from(hex.replace(/^0x/, ""), "hex"));
const out = [];
for (const item of input.items) {
  if (item.scheme === "eip712") {
    const wallet = new Wallet(item.privateKey);
    const signature = await wallet.signTypedData(input.domain, referenced(input.types, item.primaryType), item.message);
    out.push({ type: item.primaryType, scheme: "eip712", signer: wallet.address, signature, message: item.message });
  } else {
    const pair = nacl.sign.keyPair.fromSeed(hexToBytes(item.privateKey));
    const doc = canonical({ domain: input.domain, message: item.message, type: item.primaryType });
    const sig = nacl.sign.detached(new TextEncoder().encode(doc), pair.secretKey);
    out.push({ type: item.primaryType, scheme: "ed25519", signer: bs58.encode(pair.publicKey),
               signature: bs58.encode(sig), message: item.message, canonical: doc });
  }
}
process.stdout.write(JSON.stringify(out));
