// SPDX-License-Identifier: BSD-2-Clause
// client.mjs - an outside A2A client for test_a2a_js.py: the official
// JavaScript SDK (@a2a-js/sdk, installed by ./bootstrap test into
// build/a2a-js) talking to agentpoold's A2A server.
//   node client.mjs BASE_URL GATE_FILE
// discovers the Agent Card (ClientFactory.createFromUrl), sends a message,
// streams one token by token, gets a task, lists tasks, starts a task that
// waits for GATE_FILE (returnImmediately) and cancels it, continues a task
// that asked for input (its taskId on the next message), and prints what
// it saw as one JSON object for the test to check.
import { ClientFactory } from '@a2a-js/sdk/client';
import { Role, TaskState } from '@a2a-js/sdk';

const [base, gate] = process.argv.slice(2);
const text = (t, id) => ({ messageId: id, role: Role.ROLE_USER, parts: [{ content: { $case: 'text', value: t } }] });
const partText = (p) => (p.content && p.content.$case === 'text' ? p.content.value : p.content && p.content.value);
const out = {};
const client = await new ClientFactory().createFromUrl(base);

const sent = await client.sendMessage({ message: text('hello', 'js-1') });
out.send = { id: sent.id, state: sent.status.state, artifact: partText(sent.artifacts[0].parts[0]) };

out.stream = [];
for await (const ev of client.sendMessageStream({ message: text('tokens:3', 'js-2') })) {
  const p = ev.payload;
  if (p.$case === 'task') out.stream.push(['task', p.value.status.state]);
  else if (p.$case === 'artifactUpdate') out.stream.push(['artifact', partText(p.value.artifact.parts[0]), p.value.append, p.value.lastChunk]);
  else if (p.$case === 'statusUpdate') out.stream.push(['status', p.value.status.state]);
}

const got = await client.getTask({ id: sent.id, historyLength: 10 });
out.get = { id: got.id, state: got.status.state };

// listTasks({}) would send "status": "UNRECOGNIZED" (1.3.0 turns the unset
// enum into that name): ask for no status filter explicitly
const listed = await client.listTasks({ status: TaskState.TASK_STATE_UNSPECIFIED });
out.list = listed.tasks.map((t) => t.id);

const running = await client.sendMessage({ message: text('wait:' + gate, 'js-3'), configuration: { returnImmediately: true } });
const cancelled = await client.cancelTask({ id: running.id });
out.cancel = { before: running.status.state, after: cancelled.status.state };

const asked = await client.sendMessage({ message: text('ask:which size?', 'js-4') });
const answered = await client.sendMessage({ message: { ...text('echo', 'js-5'), taskId: asked.id } });
out.input = {
  asked: asked.status.state, prompt: partText(asked.status.message.parts[0]),
  id: answered.id, same: answered.id === asked.id && answered.contextId === asked.contextId,
  after: answered.status.state, history: answered.history.length,
};

console.log(JSON.stringify(out));
