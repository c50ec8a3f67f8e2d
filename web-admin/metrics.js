// Reading /metrics in the page: the Prometheus text format parsed into totals per metric name, and
// counters turned into rates by differencing two scrapes. No DOM here, so Node's tests load it.

/**
 * Totals per metric name: every sample line "name{labels} value [timestamp]" adds its value to
 * its name (labels are summed over: restarts by kind become all restarts). A name declared by a
 * "# TYPE" line without samples yet (a labelled counter nothing has counted) totals 0. Other
 * comments, blank lines and values that are not numbers are skipped.
 * @param {string} text
 * @returns {Map<string, number>}
 */
export function parseMetrics(text) {
  const totals = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("# TYPE ")) {
      const name = line.slice(7).split(/\s+/)[0];
      if (!totals.has(name)) totals.set(name, 0);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    let name;
    let rest;
    if (brace !== -1 && (space === -1 || brace < space)) {
      name = line.slice(0, brace);
      const close = closingBrace(line, brace);
      if (close === -1) continue;
      rest = line.slice(close + 1).trim();
    } else {
      if (space === -1) continue;
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const value = Number(rest.split(/\s+/)[0]);
    if (!Number.isFinite(value) || !/^[A-Za-z_:][A-Za-z0-9_:]*$/.test(name)) continue;
    totals.set(name, (totals.get(name) ?? 0) + value);
  }
  return totals;
}

/** The index of the "}" that ends the label set opened at `open`, skipping quoted values. */
function closingBrace(line, open) {
  let quoted = false;
  for (let i = open + 1; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === "}") {
      return i;
    }
  }
  return -1;
}

/**
 * The per-second rate of a counter between two scrapes; null without a previous scrape, and 0
 * when the counter went down (the server restarted and counts from 0 again).
 */
export function counterRate(previous, current, seconds) {
  if (previous === undefined || current === undefined || !(seconds > 0)) return null;
  const delta = current - previous;
  return delta < 0 ? 0 : delta / seconds;
}

/** A fixed-length history of points for one chart: the oldest fall off. */
export class Series {
  constructor(capacity) {
    this.capacity = capacity;
    this.points = [];
  }

  push(time, value) {
    this.points.push({ time, value });
    if (this.points.length > this.capacity) this.points.shift();
  }

  /** The largest value held (0 when empty). */
  max() {
    return this.points.reduce((m, p) => (p.value !== null && p.value > m ? p.value : m), 0);
  }
}
