// Shared cursors: the pointer over the video is drawn into the broadcast.
// Sends canvassrc patches (docs/capture.md) on the "canvas" data channel of
// a producer whose canvassrc follows it (`canvassrc patch-source=...`).

const COLOURS = ['#ff5050', '#50d070', '#4fa8ff', '#ffc040', '#d070ff', '#40e0d0'];

function colourFor(id) {
  let hash = 0;
  for (const c of id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return COLOURS[hash % COLOURS.length];
}

/** Patch drawing `id`'s cursor at video pixel (x, y). */
export function cursorPatch(id, x, y) {
  const colour = colourFor(id);
  return [
    { op: 'put', node: { id: `cursor-${id}`, type: 'circle', x, y, radius: 9, fill: colour, stroke: '#000', stroke_width: 2 } },
    { op: 'put', node: { id: `cursor-${id}-name`, type: 'text', x: x + 14, y: y + 5, text: id, size: 18, fill: colour } },
  ];
}

/** Follows the pointer over `video` and sends it, at most 30 times a second. */
export function shareCursor(video, session, id) {
  let pending = null;
  let timer = null;
  const flush = () => {
    timer = null;
    if (pending) session.send('canvas', JSON.stringify(cursorPatch(id, pending.x, pending.y)));
    pending = null;
  };
  video.addEventListener('pointermove', (event) => {
    const box = video.getBoundingClientRect();
    if (!video.videoWidth || !box.width) return;
    // The element may be letterboxed: map through the displayed picture.
    const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
    const left = box.left + (box.width - video.videoWidth * scale) / 2;
    const top = box.top + (box.height - video.videoHeight * scale) / 2;
    const x = Math.round((event.clientX - left) / scale);
    const y = Math.round((event.clientY - top) / scale);
    if (x < 0 || y < 0 || x > video.videoWidth || y > video.videoHeight) return;
    pending = { x, y };
    if (!timer) timer = setTimeout(flush, 33);
  });
  const remove = () => session.send('canvas', JSON.stringify([
    { op: 'remove', id: `cursor-${id}` },
    { op: 'remove', id: `cursor-${id}-name` },
  ]));
  window.addEventListener('pagehide', remove);
  return { remove };
}
