// Audio thread of the playground's microphone: collects 100 ms of samples at the
// context's rate, converts them to 16-bit PCM (linear16) and posts them, with
// their level (RMS, 0..1), to the page, which sends them on the WebSocket.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 10);
    this.buf = new Float32Array(this.size);
    this.fill = 0;
  }

  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      this.buf[this.fill++] = ch[i];
      if (this.fill === this.size) this.flush();
    }
    return true;
  }

  flush() {
    const pcm = new Int16Array(this.size);
    let sum = 0;
    for (let i = 0; i < this.size; i++) {
      const s = Math.max(-1, Math.min(1, this.buf[i]));
      sum += s * s;
      pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
    this.fill = 0;
    this.port.postMessage({ pcm: pcm.buffer, level: Math.sqrt(sum / this.size) }, [pcm.buffer]);
  }
}

registerProcessor('pcm-capture', PcmCapture);
