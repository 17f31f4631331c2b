//! A small Solana JSON-RPC 2.0 endpoint over the harness VM.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use solana_address::Address;
use solana_signature::Signature;

use crate::Inner;
use crate::http::{Request, Response};

/// Blocks a blockhash stays valid for (Solana's MAX_PROCESSING_AGE).
const BLOCKHASH_VALIDITY: u64 = 150;

pub(crate) fn handle(inner: &Inner, req: Request) -> Response {
    if req.method != "POST" {
        return Response::json(405, &json!({"error": "POST JSON-RPC 2.0 only"}));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::json(200, &error(Value::Null, -32700, "Parse error"));
    };
    match body {
        Value::Array(calls) if !calls.is_empty() => {
            let out: Vec<Value> = calls.iter().map(|c| call(inner, c)).collect();
            Response::json(200, &Value::Array(out))
        }
        Value::Object(_) => Response::json(200, &call(inner, &body)),
        _ => Response::json(200, &error(Value::Null, -32600, "Invalid Request")),
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn ok(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn call(inner: &Inner, c: &Value) -> Value {
    let id = c.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = c.get("method").and_then(Value::as_str) else {
        return error(id, -32600, "Invalid Request");
    };
    let params = c.get("params").cloned().unwrap_or(Value::Null);
    let param = |i: usize| params.get(i).cloned().unwrap_or(Value::Null);
    let st = inner.lock();
    let slot = st.svm.get_sysvar::<solana_clock::Clock>().slot;
    let context = json!({"slot": slot});
    let address = |v: Value| -> Option<Address> { v.as_str()?.parse().ok() };
    match method {
        "getGenesisHash" => ok(id, Value::String(st.genesis_hash.clone())),
        "getLatestBlockhash" => ok(
            id,
            json!({
                "context": context,
                "value": {
                    "blockhash": st.svm.latest_blockhash().to_string(),
                    "lastValidBlockHeight": slot + BLOCKHASH_VALIDITY,
                }
            }),
        ),
        "getSlot" | "getBlockHeight" => ok(id, json!(slot)),
        "getHealth" => ok(id, json!("ok")),
        "getVersion" => ok(id, json!({"solana-core": "litesvm-0.16", "feature-set": 0})),
        "getSignatureStatuses" => {
            let Some(sigs) = param(0).as_array().cloned() else {
                return error(id, -32602, "Invalid params");
            };
            let mut out = Vec::new();
            for s in sigs {
                let Some(sig) = s.as_str().and_then(|s| s.parse::<Signature>().ok()) else {
                    return error(id, -32602, "Invalid params: signature");
                };
                out.push(match st.svm.get_transaction(&sig) {
                    None => Value::Null,
                    Some(Ok(_)) => json!({
                        "slot": slot, "confirmations": null, "err": null,
                        "status": {"Ok": null}, "confirmationStatus": "finalized",
                    }),
                    Some(Err(f)) => {
                        let e = format!("{:?}", f.err);
                        json!({
                            "slot": slot, "confirmations": null, "err": e,
                            "status": {"Err": e}, "confirmationStatus": "finalized",
                        })
                    }
                });
            }
            ok(id, json!({"context": context, "value": out}))
        }
        "getBalance" => match address(param(0)) {
            Some(a) => ok(id, json!({"context": context, "value": st.svm.get_balance(&a).unwrap_or(0)})),
            None => error(id, -32602, "Invalid params"),
        },
        "getAccountInfo" => match address(param(0)) {
            Some(a) => {
                let value = match st.svm.get_account(&a) {
                    None => Value::Null,
                    Some(acc) => json!({
                        "data": [STANDARD.encode(&acc.data), "base64"],
                        "executable": acc.executable,
                        "lamports": acc.lamports,
                        "owner": acc.owner.to_string(),
                        "rentEpoch": acc.rent_epoch,
                        "space": acc.data.len(),
                    }),
                };
                ok(id, json!({"context": context, "value": value}))
            }
            None => error(id, -32602, "Invalid params"),
        },
        "getTokenAccountBalance" => match address(param(0)) {
            Some(a) => match crate::read_token_amount(&st.svm, &a) {
                Some(amount) => ok(
                    id,
                    json!({"context": context, "value": {
                        "amount": amount.to_string(),
                        "decimals": crate::MINT_DECIMALS,
                        "uiAmountString": ui_amount(amount),
                    }}),
                ),
                None => error(id, -32602, "Invalid param: not a token account"),
            },
            None => error(id, -32602, "Invalid params"),
        },
        "getMinimumBalanceForRentExemption" => match param(0).as_u64() {
            Some(n) => ok(id, json!(st.svm.minimum_balance_for_rent_exemption(n as usize))),
            None => error(id, -32602, "Invalid params"),
        },
        _ => error(id, -32601, "Method not found"),
    }
}

fn ui_amount(amount: u64) -> String {
    let scale = 10u64.pow(u32::from(crate::MINT_DECIMALS));
    let frac = format!("{:0width$}", amount % scale, width = usize::from(crate::MINT_DECIMALS));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{}", amount / scale) } else { format!("{}.{}", amount / scale, frac) }
}
