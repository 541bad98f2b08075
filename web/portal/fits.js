// Just enough FITS (4.0) to read the cutouts SODA returns: the header cards
// of each HDU and the pixels of a two-dimensional image HDU, so that stamps
// can be drawn and measured in the page.

const BLOCK = 2880;
const CARD = 80;

function headerValue(raw) {
  const v = raw.trim();
  if (v.startsWith("'")) {
    // A string: quotes doubled inside, trailing blanks not significant.
    const m = /^'((?:[^']|'')*)'/.exec(v);
    return m ? m[1].replaceAll("''", "'").trimEnd() : v;
  }
  const bare = v.split("/")[0].trim();
  if (bare === "T") return true;
  if (bare === "F") return false;
  const n = Number(bare.replace(/D/i, "E"));
  return Number.isNaN(n) ? bare : n;
}

// The HDUs of a FITS file: [{header: Map, dataStart, dataBytes}].
export function readHdus(buffer) {
  const bytes = new Uint8Array(buffer);
  const decoder = new TextDecoder("ascii");
  const hdus = [];
  let at = 0;
  while (at + BLOCK <= bytes.length) {
    const header = new Map();
    let end = false;
    let card = at;
    for (; !end && card + CARD <= bytes.length; card += CARD) {
      const text = decoder.decode(bytes.subarray(card, card + CARD));
      const key = text.slice(0, 8).trim();
      if (key === "END") end = true;
      else if (text.slice(8, 10) === "= " && !header.has(key)) header.set(key, headerValue(text.slice(10)));
    }
    if (!end) break;
    if (hdus.length === 0 && header.get("SIMPLE") !== true) throw new Error("This is not a FITS file (no SIMPLE = T).");
    const dataStart = Math.ceil((card - at) / BLOCK) * BLOCK + at;
    const naxis = header.get("NAXIS") || 0;
    let count = naxis ? 1 : 0;
    for (let i = 1; i <= naxis; i++) count *= header.get(`NAXIS${i}`) || 0;
    const dataBytes = (Math.abs(header.get("BITPIX") || 8) / 8) * ((header.get("GCOUNT") ?? 1) * ((header.get("PCOUNT") ?? 0) + count));
    hdus.push({ header, dataStart, dataBytes });
    at = dataStart + Math.ceil(dataBytes / BLOCK) * BLOCK;
  }
  return hdus;
}

// The first two-dimensional image (EXTNAME IMAGE when there is one) as
// {header, width, height, pixels: Float64Array} in physical values (BSCALE,
// BZERO applied; blanks as NaN), rows from the bottom (FITS order).
export function readImage(buffer) {
  const hdus = readHdus(buffer).filter((h) => h.header.get("NAXIS") === 2 && !h.header.get("ZIMAGE"));
  const hdu = hdus.find((h) => h.header.get("EXTNAME") === "IMAGE") || hdus[0];
  if (!hdu) throw new Error("The FITS file holds no image.");
  const h = hdu.header;
  const width = h.get("NAXIS1");
  const height = h.get("NAXIS2");
  const bitpix = h.get("BITPIX");
  const scale = h.get("BSCALE") ?? 1;
  const zero = h.get("BZERO") ?? 0;
  const blank = h.get("BLANK");
  const view = new DataView(buffer, hdu.dataStart, hdu.dataBytes);
  const read = { 8: (o) => view.getUint8(o), 16: (o) => view.getInt16(o), 32: (o) => view.getInt32(o),
    64: (o) => Number(view.getBigInt64(o)), "-32": (o) => view.getFloat32(o), "-64": (o) => view.getFloat64(o) }[bitpix];
  if (!read) throw new Error(`BITPIX ${bitpix} is not a FITS pixel type.`);
  const step = Math.abs(bitpix) / 8;
  const pixels = new Float64Array(width * height);
  for (let i = 0; i < pixels.length; i++) {
    const raw = read(i * step);
    pixels[i] = bitpix > 0 && raw === blank ? NaN : raw * scale + zero;
  }
  return { header: h, width, height, pixels };
}

// Sky (ra, dec, degrees) to 0-based pixel (x, y) through the header's
// gnomonic (TAN) WCS: CRVAL, CRPIX and CD (or PC with CDELT), which is what
// the survey's images carry. Null for another projection.
export function skyToPixel(header, ra, dec) {
  if (!String(header.get("CTYPE1") || "").endsWith("-TAN")) return null;
  const rad = Math.PI / 180;
  const [a0, d0] = [header.get("CRVAL1") * rad, header.get("CRVAL2") * rad];
  const [a, d] = [ra * rad, dec * rad];
  const cosc = Math.sin(d0) * Math.sin(d) + Math.cos(d0) * Math.cos(d) * Math.cos(a - a0);
  const xi = (Math.cos(d) * Math.sin(a - a0)) / cosc / rad;
  const eta = (Math.cos(d0) * Math.sin(d) - Math.sin(d0) * Math.cos(d) * Math.cos(a - a0)) / cosc / rad;
  const g = (k, fallback) => header.get(k) ?? fallback;
  let cd;
  if (header.has("CD1_1")) {
    cd = [g("CD1_1", 0), g("CD1_2", 0), g("CD2_1", 0), g("CD2_2", 0)];
  } else {
    const [c1, c2] = [g("CDELT1", 1), g("CDELT2", 1)];
    cd = [g("PC1_1", 1) * c1, g("PC1_2", 0) * c1, g("PC2_1", 0) * c2, g("PC2_2", 1) * c2];
  }
  const det = cd[0] * cd[3] - cd[1] * cd[2];
  const dx = (cd[3] * xi - cd[1] * eta) / det;
  const dy = (-cd[2] * xi + cd[0] * eta) / det;
  return { x: dx + header.get("CRPIX1") - 1, y: dy + header.get("CRPIX2") - 1 };
}
