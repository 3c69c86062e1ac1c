// The README's mini-program example with streamChat and chunkwise/markdown, after 构建 npm.
// The page is opened with ?url=<the chat endpoint> and stores what it showed under
// 'chunkwise-result' when the answer is complete.
const { init, streamChat } = require('chunkwise');
const markdown = require('chunkwise/markdown');

Page({
  data: { blocks: [] },
  async onLoad(query) {
    await Promise.all([init(), markdown.init()]);
    const md = new markdown.MarkdownRenderer();
    streamChat({
      request: wx.request,
      url: decodeURIComponent(query.url || ''),
      body: { model: 'demo', messages: [{ role: 'user', content: '你好' }] },
      pace: false,
      onUpdate: (view) => this.setData(md.dataFor(md.append(view.delta), 'blocks')),
      onDone: (view) => {
        this.setData(md.dataFor(md.finish(), 'blocks'));
        md.free();
        wx.setStorageSync('chunkwise-result', { text: view.text, blocks: this.data.blocks });
      },
      onError: (e) => wx.setStorageSync('chunkwise-result', { error: e }),
    });
  },
});
