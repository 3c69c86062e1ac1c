// fetch (the DOM's, or Node's from @types/node) into streamChat and into a StreamDecoder.
import { init, StreamDecoder, streamChat, fetchRequest } from 'chunkwise';

export async function ask(url: string, show: (text: string) => void): Promise<void> {
  await init();
  streamChat({
    request: fetchRequest(fetch),
    url,
    body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
    onUpdate: (view) => show(view.text),
  });

  const decoder = new StreamDecoder({ format: 'openai', pace: false });
  const res = await fetch(url, { method: 'POST', body: JSON.stringify({ model: 'demo', stream: true }) });
  if (!res.body) return;
  const reader = res.body.getReader();
  for (let r; !(r = await reader.read()).done; ) show(decoder.push(r.value).text);
  show(decoder.finish().text);
}
