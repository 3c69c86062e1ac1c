'use strict';
// Which .wasm.br file each module of the mini-program build loads, and where its init() looks
// for it by default: the build plugins emit exactly these files at exactly these paths.
const fs = require('fs');
const path = require('path');

const PACKAGE_ROOT = path.join(__dirname, '..'); // this file is plugins/wasm-files.js
/** The default init() path, counted from the mini program root (see miniprogram/index.js). */
const OUTPUT_DIR = 'miniprogram_npm/chunkwise';
const MODULES = {
  'miniprogram/index.js': 'chunkwise.wasm.br',
  'miniprogram/markdown.js': 'chunkwise_markdown.wasm.br',
};

function realpath(file) {
  try {
    return fs.realpathSync(file);
  } catch (e) {
    return path.resolve(file);
  }
}
const ROOT = realpath(PACKAGE_ROOT);

/** The wasm file a bundled module needs ({ fileName, source }), or null for any other module. */
function wasmFor(moduleFile) {
  if (typeof moduleFile !== 'string' || moduleFile === '') return null;
  const file = realpath(moduleFile.replace(/^\0/, '').replace(/\?.*$/, ''));
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  const name = MODULES[rel];
  if (name === undefined) return null;
  return { fileName: `${OUTPUT_DIR}/${name}`, source: fs.readFileSync(path.join(ROOT, 'miniprogram', name)) };
}

module.exports = { wasmFor, OUTPUT_DIR };
