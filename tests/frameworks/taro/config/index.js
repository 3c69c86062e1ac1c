// Taro 4 (React, webpack5), as `taro init` lays it out, plus the one line chunkwise asks for.
const { defineConfig } = require('@tarojs/cli');

module.exports = defineConfig({
  projectName: 'chunkwise-taro',
  date: '2026-12-06',
  designWidth: 750,
  deviceRatio: { 640: 2.34 / 2, 750: 1, 375: 2, 828: 1.81 / 2 },
  sourceRoot: 'src',
  outputRoot: process.env.TARO_OUTPUT || 'dist',
  plugins: ['chunkwise/taro'],
  framework: 'react',
  compiler: 'webpack5',
  cache: { enable: false },
  mini: {
    postcss: { pxtransform: { enable: true, config: {} }, cssModules: { enable: false } },
  },
});
