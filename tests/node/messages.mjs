// The anthropic Node SDK against the gateway's /v1/messages: a whole message,
// a stream with the SDK's own accumulator, count_tokens, and an error in
// Anthropic's envelope. Prints one JSON line of what it saw.
//   node messages.mjs BASE_URL KEY MODEL
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: "user", content: "hello from node" }];

const whole = await client.messages.create({ model, max_tokens: 64, messages });
const kinds = [];
const stream = client.messages.stream({ model, max_tokens: 64, messages });
stream.on("streamEvent", (event) => kinds.push(event.type));
const final = await stream.finalMessage();
const counted = await client.messages.countTokens({ model, messages });
let error = null;
try {
  await client.messages.create({ model, messages });   // no max_tokens
} catch (err) {
  error = { status: err.status, type: err.error?.error?.type };
}
console.log(JSON.stringify({
  text: whole.content[0].text, stop: whole.stop_reason, kinds, streamed: final.content[0].text,
  counted: counted.input_tokens, error,
}));
