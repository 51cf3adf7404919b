// Served in place of the npm `peerjs` client when this binary was built
// without it (scripts/install-deps.sh copies it into apps/web/vendor/).
window.peerjsMissing =
  "this server was built without the peerjs client: run scripts/install-deps.sh, then rebuild";
console.error(window.peerjsMissing);
