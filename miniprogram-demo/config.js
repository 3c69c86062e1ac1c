// The one place to point the demo at a relay.
//
// Local development: run `./build.sh demo` (or `cargo run -p chunkwise-relay`) and keep
// "不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书" ticked in DevTools (详情 → 本地设置;
// project.config.json sets `urlCheck: false`), because http://127.0.0.1 is not a whitelisted
// HTTPS domain. On a phone (预览 / 真机调试) 127.0.0.1 is the phone itself: use your computer's
// LAN address here, and for a release an HTTPS domain registered in the mini program's admin
// console (开发管理 → 服务器域名 → request 合法域名).
module.exports = {
  /** Base URL of the chunkwise relay (no trailing slash). */
  relay: 'http://127.0.0.1:8787',
  /** 'demo' is the relay's built-in model (no key needed); any model the relay allows works. */
  model: 'demo',
  /** Client token, when the relay requires one (RELAY_TOKENS / RELAY_HMAC_SECRET); '' for none. */
  token: '',
};
