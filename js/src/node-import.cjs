// What esm/node.js imports: the Node bundle (cjs/node.cjs) through one require(). Node scans
// every CommonJS file that ESM imports for export names (cjs-module-lexer), and that scan of the
// ~100 KB bundle was the largest part of `import` (bench/NOTES.md). This file names no exports
// (esm/node.js takes the default), so only these lines are scanned; `require` and `import` still
// share the one bundle instance.
const bundle = require("./node.cjs");
module.exports = bundle;
