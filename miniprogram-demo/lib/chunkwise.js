// The demo's one import of chunkwise: the mini-program build that `./build.sh` copies into
// miniprogram_npm/chunkwise/ (where DevTools' "构建 npm" would put it from the npm package).
// A relative path, so it resolves the same in DevTools (whatever its npm settings), on a
// device and in the tests' sandbox; `require('chunkwise')` works too after "构建 npm".
module.exports = require('../miniprogram_npm/chunkwise/index.js');
