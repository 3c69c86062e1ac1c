const config = require('./config.js');

App({
  globalData: {
    /** Read by the chat page when it sends: change config.js, or this at run time. */
    relay: config.relay,
    model: config.model,
    token: config.token,
  },
});
