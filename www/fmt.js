// Uses: nothing.
// A byte count for people to read, the same on the page and in the workers' sentences (the quota
// and space warnings). Inlined in the page, and prepended to the coordinator and browse workers.
// Defines: fmtBytes.
'use strict';

function fmtBytes(n) {
  if (n == null) return '';
  if (n >= 1e12) return (n / 1e12).toFixed(2) + ' TB';
  if (n >= 1e9) return (n / 1e9).toFixed(2) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + ' kB';
  return n + ' B';
}
