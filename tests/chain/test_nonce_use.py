"""Finding the transaction that used an account's nonce (``ChainClient.nonce_use``) on a real
anvil node: the block it was mined in, found by its state and read, whatever the distance."""

from __future__ import annotations

from eth_account import Account

from treasury_exec.chain import ChainClient


def test_nonce_use_finds_each_transaction_and_its_block(anvil) -> None:
    w3 = anvil.w3
    sender = Account.create()
    w3.eth.send_transaction({"from": anvil.accounts[0], "to": sender.address, "value": 10**18})
    client = ChainClient(anvil.rpc_url)
    mined: list[tuple[str, int]] = []
    for nonce, gap in enumerate([0, 1, 7, 40, 3]):  # empty blocks before each transaction
        if gap:
            anvil.mine(gap)
        tx = sender.sign_transaction({"to": sender.address, "value": 0, "gas": 21_000, "nonce": nonce,
                                      "chainId": 31337, "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9})
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))
        mined.append(("0x" + tx.hash.hex().removeprefix("0x"), receipt["blockNumber"]))
    anvil.mine(20)
    for nonce, (tx_hash, block) in enumerate(mined):
        use = client.nonce_use(sender.address, nonce, confirmations=2)
        assert (use.status, use.tx_hash, use.block) == ("used", tx_hash, block), nonce
    assert client.nonce_use(sender.address, len(mined), confirmations=2).status == "free"

    # mined, but without the confirmations asked for: not yet a use that counts
    tx = sender.sign_transaction({"to": sender.address, "value": 0, "gas": 21_000, "nonce": len(mined),
                                  "chainId": 31337, "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9})
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))
    assert client.nonce_use(sender.address, len(mined), confirmations=3).status == "free"
    anvil.mine(2)
    assert client.nonce_use(sender.address, len(mined), confirmations=3).status == "used"
