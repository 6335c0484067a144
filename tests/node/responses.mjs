// The openai Node SDK against the gateway's /v1/responses: a whole answer, a
// stream, and a stored response read back. Prints one JSON line of what it saw.
//   node responses.mjs BASE_URL KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const whole = await client.responses.create({ model, input: "hello from node" });
const kinds = [];
const stream = client.responses.stream({ model, input: "stream to node" });
for await (const event of stream) kinds.push(event.type);
const final = await stream.finalResponse();
const again = await client.responses.retrieve(whole.id);
let missing = null;
try {
  await client.responses.retrieve("resp_missing");
} catch (err) {
  missing = err.status;
}
console.log(JSON.stringify({
  id: whole.id, text: whole.output_text, status: whole.status, kinds,
  streamed: final.output_text, again: again.output_text, missing,
}));
