/*! Switchboard chat widget: vanilla JavaScript, no dependencies, no build step.
 *
 * Embed:  <script src="https://switchboard.example/widget.js" data-switchboard-token="sbw_…" async></script>
 * Or:     Switchboard.mount({ url, token, container, open })   (token: a string, or an async function)
 *
 * Everything lives in a shadow root; the only global is `window.Switchboard`. Model and document text
 * reach the DOM only through textContent and text nodes, never through an HTML parser.
 *
 * A conversation is a tree: editing a question or regenerating an answer makes another version of it,
 * and the widget shows one branch, with ‹ 1/2 › on a message that has versions to switch between.
 *
 * The prompts of the tenant's MCP servers are offered in the composer: a picked one is filled in by its
 * server and put in the message box, for the person to edit and send; nothing is sent for them.
 */
(() => {
  'use strict';

  // Captured now: document.currentScript is null once this first run is over.
  const SCRIPT = document.currentScript;
  const TERMINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);

  /** A completed answer the model did not finish says so: it must never look complete. */
  function cutNote(finishReason) {
    if (finishReason === 'length') return 'This answer was cut short: it reached the length limit.';
    if (finishReason === 'content_filter') return 'The provider withheld the rest of this answer.';
    return '';
  }
  const ENDS_STREAM = new Set([...TERMINAL, 'run.awaiting_approval']);
  const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
  const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
  const TOOL_STATUS = { // event → the status a tool call shows (data-status)
    'tool_call.requested': 'running', 'tool_call.awaiting_approval': 'awaiting-approval',
    'tool_call.awaiting_input': 'awaiting-input', 'tool_call.completed': 'done', 'tool_call.denied': 'denied',
    'tool_call.failed': 'failed',
  };
  const STATUS_LABELS = {
    running: 'Running…', 'awaiting-approval': 'Needs your approval', 'awaiting-input': 'Needs your answer', done: 'Done',
    denied: 'Denied', failed: 'Failed',
  };
  /** The statuses in which a call waits for a person, its buttons (or form) live. */
  const WAITING = new Set(['awaiting-approval', 'awaiting-input']);
  /** String formats of a question's field that have an input type of their own. */
  const STRING_INPUT_TYPES = { email: 'email', uri: 'url', date: 'date' };

  // ---------------------------------------------------------------- small DOM helpers

  /** Builds an element. Children are nodes or strings; append() turns strings into text nodes, unparsed. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    node.append(...children.filter((child) => child != null));
    return node;
  }

  /** A small stroke icon from path data we ship (never from the network). */
  function icon(name) {
    const svgEl = (tag, attrs) => {
      const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
      for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
      return node;
    };
    const svg = svgEl('svg', { viewBox: '0 0 24 24', width: 20, height: 20, fill: 'none', stroke: 'currentColor',
      'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false' });
    svg.append(...ICONS[name].map((d) => svgEl('path', { d })));
    return svg;
  }
  const ICONS = {
    chat: ['M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z'],
    close: ['M6 6l12 12', 'M18 6L6 18'],
    plus: ['M12 5v14', 'M5 12h14'],
    list: ['M4 6h16', 'M4 12h16', 'M4 18h10'],
    send: ['M5 12h14', 'M13 6l6 6-6 6'],
    stop: ['M7 7h10v10H7z'],
    prompt: ['M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z', 'M14 3v6h6', 'M8 13h8', 'M8 17h5'],
  };

  /** Calls fn on the next frame; in a hidden tab frames stop, so a timer stands in. */
  const nextFrame = (fn) => (document.hidden ? setTimeout(fn, 50) : requestAnimationFrame(fn));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  /** A fresh Idempotency-Key (random, so two questions never share one). */
  const newIdempotencyKey = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join(''));

  // ---------------------------------------------------------------- API client

  class ApiError extends Error {
    constructor(status, code, message, requestId) {
      super(message);
      Object.assign(this, { status, code, requestId });
    }
  }

  async function errorFrom(response) {
    let body = {};
    try { body = (await response.json()).error || {}; } catch { /* not JSON: a proxy's error page */ }
    return new ApiError(response.status, body.code || `http_${response.status}`,
      body.message || `The server answered ${response.status}.`, body.request_id);
  }

  /** Authenticated fetch against the Switchboard API. A token function is asked again once on a 401. */
  function createApi(baseUrl, tokenSource) {
    let token = typeof tokenSource === 'function' ? null : tokenSource;
    let asking = null; // one call of the token function at a time, shared by concurrent requests
    const currentToken = async (fresh) => {
      if (typeof tokenSource !== 'function' || (token && !fresh)) return token;
      asking = asking || Promise.resolve(tokenSource()).finally(() => { asking = null; });
      token = await asking;
      return token;
    };
    async function request(method, path, { body, headers = {}, signal } = {}) {
      for (let attempt = 0; ; attempt += 1) {
        const init = {
          method, signal, cache: 'no-store', credentials: 'omit', // bearer tokens only: never the host's cookies
          headers: { Accept: 'application/json', ...headers, Authorization: `Bearer ${await currentToken(attempt > 0)}` },
        };
        if (body !== undefined) {
          init.headers['Content-Type'] = 'application/json';
          init.body = JSON.stringify(body);
        }
        const response = await fetch(baseUrl + path, init);
        if (response.status === 401 && attempt === 0 && typeof tokenSource === 'function') continue;
        if (!response.ok) throw await errorFrom(response);
        return response;
      }
    }
    const json = async (method, path, body) => (await request(method, path, { body })).json();
    const stream = (method, path, { body, lastEventId, idempotencyKey, signal } = {}) => request(method, path, {
      body, signal,
      headers: {
        Accept: 'text/event-stream',
        ...(lastEventId != null ? { 'Last-Event-ID': String(lastEventId) } : {}),
        ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
      },
    });
    return { json, stream, request };
  }

  // ---------------------------------------------------------------- Server-Sent Events over fetch

  /**
   * Reads SSE frames from a fetch response (EventSource cannot send Authorization) and calls
   * onEvent({id, name, data}) for each. onEvent returns true to stop reading. Returns normally when the
   * server closes the stream; throws when the connection breaks.
   */
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let frame = { id: null, name: '', data: [] };
    let stop = false;
    const handleLine = (line) => {
      if (line === '') { // a blank line dispatches the frame
        if (frame.data.length) stop = onEvent({ id: frame.id, name: frame.name || 'message', data: frame.data.join('\n') }) === true;
        frame = { id: null, name: '', data: [] };
        return;
      }
      if (line.startsWith(':')) return; // a comment, such as the server's keep-alive
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') frame.data.push(value);
      else if (field === 'event') frame.name = value;
      else if (field === 'id' && !value.includes('\0')) frame.id = value;
    };
    try {
      while (!stop) {
        const { value, done } = await reader.read();
        if (done) return; // an unterminated last frame is incomplete: dropped, as EventSource does
        buffer += decoder.decode(value, { stream: true });
        const lineEnd = /\r\n|\r|\n/g;
        let start = 0;
        let match;
        while (!stop && (match = lineEnd.exec(buffer))) {
          // A CR ending the chunk may be the first half of a CRLF: wait for the next chunk to know.
          if (match[0] === '\r' && match.index === buffer.length - 1) break;
          handleLine(buffer.slice(start, match.index));
          start = lineEnd.lastIndex;
        }
        buffer = buffer.slice(start);
      }
    } finally {
      if (stop) reader.cancel().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- Markdown, as DOM nodes only

  const INLINE = new RegExp([
    '(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)', // 1,2: code span
    '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*', // 3: **bold**
    '(?<![\\p{L}\\p{N}])__(?=\\S)([\\s\\S]*?\\S)__(?![\\p{L}\\p{N}])', // 4: __bold__ (not inside words)
    '\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*', // 5: *italic*
    '(?<![\\p{L}\\p{N}_])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![\\p{L}\\p{N}_])', // 6: _italic_ (not snake_case)
    '\\[([^\\[\\]\\n]+)\\]\\(\\s*<?([^\\s<>()]+(?:\\([^\\s<>()]*\\)[^\\s<>()]*)*)>?(?:\\s+"[^"]*")?\\s*\\)', // 7,8: [text](url)
    '\\[(\\d{1,3}(?:\\s*,\\s*\\d{1,3})*)\\]', // 9: citation markers [1] or [1, 2]
    '(https?:\\/\\/[^\\s<>()]*[^\\s<>().,;:!?\'"\\]])', // 10: a bare URL
  ].join('|'), 'gu');

  /** The URL if it is safe to link to (http, https, mailto), else null. */
  function safeHref(raw) {
    try {
      const url = new URL(raw);
      return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  /** Text with its newlines as <br>. */
  function appendText(parent, text) {
    text.split('\n').forEach((line, index) => {
      if (index) parent.append(el('br'));
      if (line) parent.append(document.createTextNode(line));
    });
  }

  function link(href, parent) {
    return el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, parent);
  }

  /** Inline markdown: code, emphasis, links, citation markers. `cite(n)` gives a marker node or null. */
  function renderInline(text, parent, cite) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      appendText(parent, text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[2] !== undefined) parent.append(el('code', {}, m[2].replace(/\n/g, ' ')));
      else if (m[3] !== undefined || m[4] !== undefined) renderInline(m[3] ?? m[4], parent.appendChild(el('strong')), cite);
      else if (m[5] !== undefined || m[6] !== undefined) renderInline(m[5] ?? m[6], parent.appendChild(el('em')), cite);
      else if (m[7] !== undefined) {
        const href = safeHref(m[8]);
        const target = href ? parent.appendChild(link(href)) : parent;
        renderInline(m[7], target, cite); // an unsafe link keeps only its text
      } else if (m[9] !== undefined) {
        const markers = m[9].split(',').map((n) => cite(Number(n.trim())));
        if (markers.every(Boolean)) parent.append(...markers);
        else appendText(parent, m[0]); // not one of this answer's sources: literal text
      } else {
        const href = safeHref(m[10]);
        parent.append(href ? link(href, m[10]) : m[10]);
      }
    }
    appendText(parent, text.slice(last));
  }

  const BLOCK = {
    fence: /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/,
    heading: /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/,
    rule: /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/,
    item: /^ {0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/,
    quote: /^ {0,3}>\s?(.*)$/,
  };
  const startsBlock = (line) => BLOCK.fence.test(line) || BLOCK.heading.test(line) || BLOCK.item.test(line)
    || BLOCK.quote.test(line) || BLOCK.rule.test(line);

  /**
   * Block markdown: paragraphs, headings, fenced code, lists, quotes, rules. Tolerates the partial text
   * of a streaming answer (an unclosed fence is code until it closes).
   */
  function renderMarkdown(text, parent, cite) {
    const lines = text.replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) {
        i += 1;
      } else if ((m = BLOCK.fence.exec(line))) {
        const body = [];
        for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(m[1]); i += 1) body.push(lines[i]);
        i += 1; // the closing fence
        const code = el('code', m[2] ? { 'data-language': m[2] } : {}, body.join('\n'));
        parent.append(el('pre', {}, code));
      } else if ((m = BLOCK.heading.exec(line))) {
        // Headings inside a chat bubble sit below the host page's own: # becomes h3.
        renderInline(m[2], parent.appendChild(el(`h${Math.min(6, m[1].length + 2)}`)), cite);
        i += 1;
      } else if (BLOCK.rule.test(line)) {
        parent.append(el('hr'));
        i += 1;
      } else if (BLOCK.quote.test(line)) {
        const quoted = [];
        for (; i < lines.length && (m = BLOCK.quote.exec(lines[i])); i += 1) quoted.push(m[1]);
        renderMarkdown(quoted.join('\n'), parent.appendChild(el('blockquote')), cite);
      } else if ((m = BLOCK.item.exec(line))) {
        i = renderList(lines, i, /\d/.test(m[1]), parent, cite);
      } else {
        const paragraph = [line];
        for (i += 1; i < lines.length && lines[i].trim() && !startsBlock(lines[i]); i += 1) paragraph.push(lines[i]);
        renderInline(paragraph.join('\n'), parent.appendChild(el('p')), cite);
      }
    }
  }

  /** One list from line i; items of the other kind end it. Returns the index after it. */
  function renderList(lines, i, ordered, parent, cite) {
    const list = parent.appendChild(el(ordered ? 'ol' : 'ul'));
    const first = BLOCK.item.exec(lines[i])[1];
    if (ordered && parseInt(first, 10) !== 1) list.setAttribute('start', parseInt(first, 10));
    let m;
    while (i < lines.length && (m = BLOCK.item.exec(lines[i])) && /\d/.test(m[1]) === ordered) {
      const text = [m[2]];
      // Continuation lines of the item: not blank, not a new block.
      for (i += 1; i < lines.length && lines[i].trim() && !startsBlock(lines[i]); i += 1) text.push(lines[i].trim());
      renderInline(text.join('\n'), list.appendChild(el('li')), cite);
      if (i < lines.length && !lines[i].trim() && BLOCK.item.test(lines[i + 1] || '')) i += 1; // a loose list
    }
    return i;
  }

  // ---------------------------------------------------------------- a tool's question, as a form

  let questionForms = 0; // numbers each question's form: our ids, never the server's names

  /** A field's choices, [{value, label}], when it is an enum (labels from enumNames or oneOf titles); else null. */
  function choicesOf(property) {
    if (Array.isArray(property.enum)) {
      const names = Array.isArray(property.enumNames) ? property.enumNames : [];
      return property.enum.map((value, index) => ({ value, label: String(names[index] ?? value) }));
    }
    if (Array.isArray(property.oneOf) && property.oneOf.length && property.oneOf.every((option) => option && 'const' in option)) {
      return property.oneOf.map((option) => ({ value: option.const, label: String(option.title ?? option.const) }));
    }
    return null;
  }

  /**
   * One field of a question's form, from its schema (MCP allows strings, numbers, integers and booleans,
   * with enums and bounds): {name, label, control, node, read}, where read() gives {value}, or null when
   * the field is empty. A field of another type gives {name, unsupported: true}.
   */
  function questionField(id, name, property, required) {
    const type = property.type || 'string'; // as the server reads a field without a type
    const label = typeof property.title === 'string' && property.title ? property.title : name;
    const hint = typeof property.description === 'string' && property.description
      ? el('div', { id: `${id}-hint`, class: 'prompt-hint' }, property.description) : null;
    const common = { id, 'data-testid': 'input-field', 'data-name': name, 'aria-describedby': hint ? hint.id : null };
    const choices = choicesOf(property);
    let control;
    let read;
    if (choices) {
      control = el('select', { ...common, class: 'prompt-input', required },
        el('option', { value: '' }, required ? 'Choose…' : '—'),
        ...choices.map((choice, index) => el('option', { value: String(index), selected: choice.value === property.default },
          choice.label)));
      // By position: an enum of numbers answers numbers.
      read = () => (control.selectedIndex > 0 ? { value: choices[control.selectedIndex - 1].value } : null);
    } else if (type === 'boolean') {
      // A checkbox always has an answer, so it is never marked required (that would mean "must be ticked").
      control = el('input', { ...common, type: 'checkbox', checked: property.default === true });
      read = () => ({ value: control.checked });
      return { name, label, control, read,
        node: el('div', { class: 'input-check' }, control, el('label', { for: id }, label), hint) };
    } else if (type === 'number' || type === 'integer') {
      control = el('input', { ...common, type: 'number', class: 'prompt-input', required, min: property.minimum,
        max: property.maximum, step: type === 'integer' ? 1 : 'any', inputmode: type === 'integer' ? 'numeric' : 'decimal',
        value: typeof property.default === 'number' ? property.default : null });
      read = () => (control.value === '' ? null : { value: Number(control.value) });
    } else if (type === 'string') {
      control = el('input', { ...common, type: STRING_INPUT_TYPES[property.format] || 'text', class: 'prompt-input', required,
        minlength: property.minLength, maxlength: property.maxLength, autocomplete: 'off',
        value: typeof property.default === 'string' ? property.default : null });
      read = () => (control.value === '' ? null : { value: control.value });
    } else {
      return { name, unsupported: true };
    }
    const labelNode = el('label', { for: id }, label, required ? el('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null);
    return { name, label, control, read, node: el('div', { class: 'prompt-field' }, labelNode, control, hint) };
  }

  // ---------------------------------------------------------------- one assistant answer

  /** An assistant message: tool calls, the answer (re-rendered at most once per frame), its sources. */
  class AnswerView {
    constructor(widget) {
      this.widget = widget;
      this.text = '';
      this.citations = [];
      this.tools = new Map();
      this.toolList = el('ul', { class: 'tools', hidden: true, 'aria-label': 'Tool calls' });
      this.body = el('div', { class: 'answer', 'data-testid': 'answer-text' });
      this.bubble = el('div', { class: 'bubble pending' }, this.body);
      this.sourceList = el('ol', { class: 'source-list' });
      this.sources = el('div', { class: 'sources', hidden: true }, el('div', { class: 'sources-title' }, 'Sources'), this.sourceList);
      this.note = el('div', { class: 'note', hidden: true });
      // Thumbs up and down, shown once the answer is stored (its message id is known).
      this.feedbackNote = el('span', { class: 'feedback-note', role: 'status', 'data-testid': 'feedback-note' });
      this.feedback = el('div', { class: 'feedback', role: 'group', 'aria-label': 'Was this answer helpful?',
        'data-testid': 'feedback', hidden: true });
      // Versions and regenerate, once the answer is stored (Widget.decorate).
      this.actions = el('div', { class: 'msg-actions', hidden: true });
      // aria-busy: screen readers wait for the finished answer instead of reading every frame's re-render.
      this.root = el('div', { class: 'msg assistant', 'data-testid': 'message', 'data-role': 'assistant', 'aria-busy': 'true' },
        this.toolList, this.bubble, this.note, this.sources, this.feedback, this.actions);
      this.frame = null;
    }

    append(text) {
      this.text += text;
      if (this.frame == null) this.frame = nextFrame(() => this.render());
    }

    setText(text) { this.text = text; this.render(); }

    /** Renders the whole answer again: partial markdown settles as more text arrives. */
    render() {
      this.frame = null;
      const follow = this.widget.nearBottom();
      this.bubble.classList.toggle('pending', !this.text);
      this.body.replaceChildren();
      renderMarkdown(this.text, this.body, (n) => this.marker(n));
      if (follow) this.widget.scrollToBottom();
    }

    /** Ends the answer: no typing dots; an empty bubble goes away. */
    finish(note) {
      const follow = this.widget.nearBottom();
      this.render();
      this.root.setAttribute('aria-busy', 'false');
      this.bubble.classList.remove('pending');
      this.bubble.hidden = !this.text;
      if (note) Object.assign(this.note, { hidden: false, textContent: note });
      // No answer at all (a run that failed at once): no bare list of sources either.
      if (!this.text) this.sources.hidden = true;
      this.root.hidden = !this.text && !note && this.tools.size === 0;
      if (follow) this.widget.scrollToBottom();
    }

    /**
     * Offers thumbs up and down on the stored answer `messageId`. A second click replaces the first
     * rating (the server keeps one per answer per person); the pressed one says which is recorded.
     */
    offerFeedback(messageId) {
      if (!messageId || !this.text) return;
      const rate = async (rating) => {
        const buttons = [...this.feedback.querySelectorAll('button')];
        buttons.forEach((b) => { b.disabled = true; });
        try {
          await this.widget.api.json('POST', `/api/v1/messages/${encodeURIComponent(messageId)}/feedback`, { rating });
          buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.rating === rating)));
          this.feedbackNote.textContent = 'Thanks for your feedback.';
        } catch (error) {
          this.feedbackNote.textContent = `Your feedback was not saved: ${this.widget.describe(error)}`;
        } finally {
          buttons.forEach((b) => { b.disabled = false; });
        }
      };
      // Text glyphs, not SVG: the message list holds no element but text and buttons (the XSS scenario checks).
      const button = (rating, label, glyph) => el('button', { type: 'button', class: 'rate', 'data-testid': `feedback-${rating}`,
        'data-rating': rating, 'aria-pressed': 'false', 'aria-label': label, title: label, onclick: () => rate(rating) },
      el('span', { 'aria-hidden': 'true' }, glyph));
      this.feedback.replaceChildren(button('up', 'Helpful', '\u{1F44D}'), button('down', 'Not helpful', '\u{1F44E}'),
        this.feedbackNote);
      this.feedback.hidden = false;
    }

    setCitations(citations) {
      this.citations = Array.isArray(citations) ? citations : [];
      this.sourceList.replaceChildren(...this.citations.map((citation, index) => {
        const number = citation.number ?? index + 1;
        const path = citation.source_path || 'source';
        // Passages of one document differ by their section: "Title › Section".
        const headings = Array.isArray(citation.heading_path) ? citation.heading_path : [];
        const trail = [citation.title, headings.length > 1 ? headings[headings.length - 1] : null]
          .filter((part) => part && part !== path).join(' › ');
        const line = trail ? `${path} — ${trail}` : path;
        return el('li', { 'data-testid': 'citation', 'data-number': number, value: number, tabindex: '-1',
          title: citation.excerpt ? `${line}\n\n${citation.excerpt}` : line },
        el('span', { class: 'source-line' }, el('span', { class: 'source-path' }, path), trail ? ` — ${trail}` : null));
      }));
      this.sources.hidden = this.citations.length === 0;
      if (this.text) this.render();
    }

    /** A superscript link to source n, or null when the answer has no such source. */
    marker(n) {
      if (!this.citations.some((citation, index) => (citation.number ?? index + 1) === n)) return null;
      const anchor = el('a', { href: '#', class: 'cite', 'aria-label': `Source ${n}`, onclick: (event) => {
        event.preventDefault();
        const item = this.sourceList.querySelector(`[data-number="${n}"]`);
        if (!item) return;
        item.focus();
        item.classList.remove('flash');
        void item.offsetWidth; // restart the highlight animation
        item.classList.add('flash');
      } }, `[${n}]`);
      return el('sup', {}, anchor);
    }

    /** The list item of a tool call, made on first sight. */
    toolCall(id, name) {
      let call = this.tools.get(id);
      if (!call) {
        const item = el('li', { class: 'tool', 'data-testid': 'tool-call', 'data-tool-call-id': id });
        call = { item, name: el('span', { class: 'tool-name' }), status: el('span', { class: 'tool-status' }),
          detail: el('div', { class: 'tool-detail', hidden: true }), actions: null };
        item.append(el('div', { class: 'tool-head' }, call.name, call.status), call.detail);
        this.tools.set(id, call);
        this.toolList.append(item);
        this.toolList.hidden = false;
      }
      if (name) call.name.textContent = name;
      return call;
    }

    setToolStatus(id, name, status, detail) {
      const call = this.toolCall(id, name);
      call.item.dataset.status = status;
      call.status.textContent = STATUS_LABELS[status] || status;
      if (detail) Object.assign(call.detail, { hidden: false, textContent: detail });
      else if (status === 'done') call.detail.hidden = true; // the approval's reason is past
      if (call.actions && !WAITING.has(status)) {
        // Decided or answered: the buttons (or the form) stay, disabled, until the call's outcome; then they go.
        if (status === 'running') call.actions.querySelectorAll('button, fieldset').forEach((b) => { b.disabled = true; });
        else { call.actions.remove(); call.actions = null; }
      }
      return call;
    }

    showArguments(id, args) {
      if (args == null || (typeof args === 'object' && Object.keys(args).length === 0)) return;
      const call = this.toolCall(id);
      if (call.item.querySelector('details')) return;
      call.item.append(el('details', {}, el('summary', {}, 'Arguments'), el('pre', {}, JSON.stringify(args, null, 2))));
    }

    /** Approve / Deny buttons; decide(approve) resolves once the server has the decision. */
    askApproval(id, decide) {
      const call = this.toolCall(id);
      if (call.actions) return;
      const button = (label, approve, testid) => el('button', { type: 'button', class: approve ? 'primary' : 'secondary',
        'data-testid': testid, onclick: async () => {
          call.actions.querySelectorAll('button').forEach((b) => { b.disabled = true; });
          if (!(await decide(approve))) call.actions?.querySelectorAll('button').forEach((b) => { b.disabled = false; });
        } }, label);
      call.actions = el('div', { class: 'tool-actions' }, button('Approve', true, 'approve'), button('Deny', false, 'deny'));
      call.item.append(call.actions);
    }

    /**
     * The question a call's server asks (`asked`: message and requested_schema) as a form: Submit (accept),
     * Decline, Cancel. answer(action, content) resolves to null once the server has the answer, else to
     * what to say by the form (the server's reason when the answer does not fit); the form stays for another try.
     */
    askInput(id, asked, answer) {
      const call = this.toolCall(id);
      if (call.actions) return;
      const schema = asked.requested_schema && typeof asked.requested_schema === 'object' ? asked.requested_schema : {};
      const properties = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      questionForms += 1;
      const formId = `sb-question-${questionForms}`;
      const built = Object.entries(properties).map(([name, property], index) =>
        questionField(`${formId}-${index}`, name, property && typeof property === 'object' ? property : {}, required.has(name)));
      // An optional field the widget cannot show is left out; a required one leaves only Decline and Cancel.
      const fields = built.filter((field) => !field.unsupported);
      const answerable = !built.some((field) => field.unsupported && required.has(field.name));
      const note = el('div', { class: 'input-note', role: 'alert', 'data-testid': 'input-error' });
      const send = async (action, content) => {
        note.textContent = '';
        fieldset.disabled = true;
        const refused = await answer(action, content);
        if (refused == null) return; // answered: disabled until the call's outcome
        fieldset.disabled = false;
        note.textContent = refused;
      };
      const submit = (event) => {
        event.preventDefault();
        if (!answerable) return; // Enter in a field submits even without a Submit button
        fields.forEach(({ control }) => control.removeAttribute('aria-invalid'));
        // The browser's own checks (required, bounds, lengths, whole numbers), said by the form.
        const invalid = fields.find(({ control }) => !control.checkValidity());
        if (invalid) {
          invalid.control.setAttribute('aria-invalid', 'true');
          note.textContent = `${invalid.label}: ${invalid.control.validationMessage}`;
          invalid.control.focus();
          return;
        }
        // An empty optional field is not sent.
        const content = Object.fromEntries(fields.map(({ name, read }) => [name, read()]).filter(([, given]) => given)
          .map(([name, given]) => [name, given.value]));
        send('accept', content);
      };
      const button = (label, action, props) => el('button', { class: action === 'accept' ? 'primary' : 'secondary',
        'data-testid': `input-${action === 'accept' ? 'submit' : action}`, ...props }, label);
      const fieldset = el('fieldset', {},
        el('legend', { class: 'input-question', 'data-testid': 'input-question' }, String(asked.message ?? '')),
        ...fields.map(({ node }) => node),
        answerable ? null : el('p', { class: 'prompt-hint' }, 'This question asks for something the chat cannot show: decline or cancel it.'),
        note,
        el('div', { class: 'tool-actions' },
          answerable ? button('Submit', 'accept', { type: 'submit' }) : null,
          button('Decline', 'decline', { type: 'button', onclick: () => send('decline') }),
          button('Cancel', 'cancel', { type: 'button', onclick: () => send('cancel') })));
      call.actions = el('form', { class: 'input-form', 'data-testid': 'input-form', novalidate: true, onsubmit: submit }, fieldset);
      call.item.append(call.actions);
    }
  }

  // ---------------------------------------------------------------- the widget

  class Widget {
    constructor({ url, token, container, open }) {
      this.api = createApi(String(url).replace(/\/+$/, ''), token);
      this.inline = Boolean(container);
      this.sessions = [];
      this.sessionId = null;
      this.turn = null; // the run being followed: {runId, lastSeq, view, ...}
      this.loaded = false;
      this.prompts = []; // the tenant's MCP prompts, fetched once when the widget first opens
      this.promptsShown = 0; // counts the prompt panel's openings and closings: a fill answers only the one it began in
      this.build(container || document.body);
      // Opened by the page, not by a person: the host page keeps its focus.
      if (open || this.inline) this.open({ focus: false });
    }

    // ---- layout

    build(parent) {
      this.host = el('div', parent === document.body && !document.getElementById('switchboard-widget')
        ? { id: 'switchboard-widget' } : { class: this.inline ? 'switchboard-widget sb-inline' : 'switchboard-widget' });
      this.shadow = this.host.attachShadow({ mode: 'open' });
      this.setState('idle');
      const panelId = 'sb-panel';
      this.launcher = el('button', { type: 'button', class: 'launcher', 'data-testid': 'launcher', 'aria-expanded': 'false',
        'aria-controls': panelId, 'aria-label': 'Open chat', onclick: () => this.toggle() }, icon('chat'));
      this.sessionsButton = el('button', { type: 'button', class: 'icon-button', 'aria-label': 'Conversations',
        'aria-expanded': 'false', 'aria-controls': 'sb-sessions', onclick: () => this.toggleSessions() }, icon('list'));
      this.newButton = el('button', { type: 'button', class: 'text-button', 'data-testid': 'new-conversation',
        onclick: () => this.newConversation() }, icon('plus'), el('span', {}, 'New conversation'));
      const closeButton = this.inline ? null : el('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close chat',
        onclick: () => this.close() }, icon('close'));
      this.sessionList = el('ul', { class: 'session-items' });
      this.sessionsPanel = el('nav', { id: 'sb-sessions', class: 'sessions', 'data-testid': 'session-list',
        'aria-label': 'Conversations', hidden: true }, el('div', { class: 'sessions-title' }, 'Your conversations'), this.sessionList);
      this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', 'data-testid': 'messages', tabindex: '0' });
      this.status = el('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'status' });
      this.input = el('textarea', { id: 'sb-input', rows: '1', 'data-testid': 'input', placeholder: 'Ask a question…',
        'aria-describedby': 'sb-hint', oninput: () => this.resizeInput(), onkeydown: (event) => this.onInputKey(event) });
      this.sendButton = el('button', { type: 'submit', class: 'send', 'data-testid': 'send', 'aria-label': 'Send' }, icon('send'));
      this.stopButton = el('button', { type: 'button', class: 'send stop', 'data-testid': 'stop', 'aria-label': 'Stop answering',
        hidden: true, onclick: () => this.cancelRun() }, icon('stop'));
      // Shown once the tenant is known to have prompts (loadPrompts).
      this.promptsButton = el('button', { type: 'button', class: 'icon-button prompts-button', 'data-testid': 'prompts-button',
        'aria-label': 'Prompts', title: 'Start from a prompt', 'aria-expanded': 'false', 'aria-controls': 'sb-prompts', hidden: true,
        onclick: () => this.togglePrompts() }, icon('prompt'));
      this.promptsPanel = el('section', { id: 'sb-prompts', class: 'prompts', 'data-testid': 'prompts', 'aria-label': 'Prompts',
        hidden: true });
      const form = el('form', { class: 'composer', onsubmit: (event) => { event.preventDefault(); this.send(); } },
        el('label', { for: 'sb-input', class: 'visually-hidden' }, 'Message'), this.promptsButton, this.input, this.sendButton,
        this.stopButton,
        el('div', { id: 'sb-hint', class: 'visually-hidden' }, 'Enter sends, Shift+Enter adds a line.'));
      this.panel = el('section', { id: panelId, class: 'panel', role: 'dialog', 'aria-label': 'Switchboard chat', 'data-testid': 'panel',
        hidden: true, onkeydown: (event) => this.onPanelKey(event) },
      el('header', {}, this.sessionsButton, el('div', { class: 'title' }, 'Assistant'), this.newButton, closeButton),
      el('div', { class: 'body' }, this.log, this.sessionsPanel, this.promptsPanel), this.status, form);
      this.root = el('div', { class: this.inline ? 'root inline' : 'root' }, this.panel, this.inline ? null : this.launcher);
      this.applyStyles();
      this.shadow.append(this.root);
      this.showEmptyState();
      parent.append(this.host);
    }

    /** Constructable stylesheets pass strict host CSPs; a <style> element is the fallback. */
    applyStyles() {
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        this.shadow.adoptedStyleSheets = [sheet];
      } catch {
        this.shadow.append(el('style', {}, CSS));
      }
    }

    showEmptyState() {
      this.log.replaceChildren(el('div', { class: 'empty' }, el('strong', {}, 'Ask anything.'),
        el('span', {}, 'Answers come from the documentation, with their sources.')));
    }

    // ---- open, close, keyboard

    open({ focus = true } = {}) {
      this.panel.hidden = false;
      this.launcher.setAttribute('aria-expanded', 'true');
      this.launcher.setAttribute('aria-label', 'Close chat');
      this.launcher.replaceChildren(icon('close'));
      this.root.classList.add('open');
      if (focus) this.input.focus();
      if (!this.loaded) {
        this.loaded = true;
        this.loadSessions({ resumeLatest: true });
        this.loadPrompts();
      }
    }

    close() {
      if (this.inline) return;
      this.closePrompts({ focus: false });
      this.panel.hidden = true;
      this.root.classList.remove('open');
      this.launcher.setAttribute('aria-expanded', 'false');
      this.launcher.setAttribute('aria-label', 'Open chat');
      this.launcher.replaceChildren(icon('chat'));
      this.launcher.focus();
    }

    toggle() { return this.panel.hidden ? this.open() : this.close(); }

    onPanelKey(event) {
      if (event.key !== 'Escape') return;
      event.stopPropagation();
      if (!this.promptsPanel.hidden) this.closePrompts();
      else if (!this.sessionsPanel.hidden) this.toggleSessions(false);
      else this.close();
    }

    onInputKey(event) {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    }

    resizeInput() {
      this.input.style.height = 'auto';
      this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`;
    }

    nearBottom() { return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80; }

    scrollToBottom() { this.log.scrollTop = this.log.scrollHeight; }

    // ---- state shown to people and to tests

    /** host[data-state] and the live status line, together. */
    setState(state, status = '') {
      this.host.dataset.state = state;
      if (this.status) this.status.textContent = status;
      if (this.sendButton) {
        const active = state === 'streaming' || state === 'reconnecting';
        this.sendButton.hidden = active;
        this.stopButton.hidden = !active;
      }
    }

    /** An error in the conversation (role=alert). A retry button runs `retry` and removes the error. */
    showError(message, retry, { transient = false } = {}) {
      const box = el('div', { class: 'msg error', role: 'alert', 'data-testid': 'error', 'data-transient': transient || null },
        el('span', {}, message));
      if (retry) {
        box.append(el('button', { type: 'button', class: 'secondary', 'data-testid': 'retry', onclick: () => {
          box.remove();
          retry();
        } }, 'Retry'));
      }
      this.log.append(box);
      this.scrollToBottom();
      this.setState('error');
    }

    describe(error) {
      if (error instanceof ApiError) {
        if (error.status === 401) return 'Your chat session has expired. Reload the page to continue.';
        return error.message + (error.requestId ? ` (request ${error.requestId})` : '');
      }
      return 'Cannot reach the server. Check your connection.';
    }

    // ---- conversations

    toggleSessions(show = this.sessionsPanel.hidden) {
      this.sessionsPanel.hidden = !show;
      this.sessionsButton.setAttribute('aria-expanded', String(show));
      if (!show) return this.sessionsButton.focus();
      this.closePrompts({ focus: false });
      const focusFirst = () => (this.sessionList.querySelector('button') || this.newButton).focus();
      focusFirst();
      // The fresh list replaces the buttons: focus goes back into it unless the person moved on.
      return this.loadSessions().then(() => { if (!this.sessionsPanel.hidden && !this.shadow.activeElement) focusFirst(); });
    }

    async loadSessions({ resumeLatest = false } = {}) {
      try {
        const { sessions } = await this.api.json('GET', '/api/v1/sessions?limit=50');
        this.sessions = sessions || [];
      } catch (error) {
        this.sessionList.replaceChildren(el('li', { class: 'muted' }, this.describe(error)));
        return;
      }
      this.renderSessions();
      // A returning visitor sees their latest conversation, unless they already started typing one.
      const untouched = !this.sessionId && !this.turn && !this.log.querySelector('.msg');
      if (resumeLatest && untouched && this.sessions.length) this.selectSession(this.sessions[0].id);
    }

    renderSessions() {
      if (!this.sessions.length) {
        this.sessionList.replaceChildren(el('li', { class: 'muted' }, 'No conversations yet.'));
        return;
      }
      const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
      this.sessionList.replaceChildren(...this.sessions.map((session) => el('li', {},
        el('button', { type: 'button', class: 'session', 'aria-current': session.id === this.sessionId ? 'true' : null,
          onclick: () => { this.toggleSessions(false); this.selectSession(session.id); this.input.focus(); } },
        el('span', { class: 'session-title' }, session.title || 'Untitled conversation'),
        el('span', { class: 'session-date' }, when.format(new Date(session.updated_at || session.created_at)))))));
    }

    /** Leaves the run being followed (it goes on on the server) and empties the conversation. */
    reset(sessionId) {
      if (this.turn) this.turn.abort.abort();
      this.turn = null;
      this.sessionId = sessionId;
      this.showEmptyState();
      this.setState('idle');
      this.renderSessions();
    }

    newConversation() {
      this.reset(null);
      this.toggleSessions(false);
      this.input.focus();
    }

    async selectSession(id) {
      this.reset(id);
      this.setState('idle', 'Loading conversation…');
      let messages;
      try {
        messages = await this.branch(id);
      } catch (error) {
        this.showError(`Cannot load this conversation: ${this.describe(error)}`, () => this.selectSession(id));
        return;
      }
      if (this.sessionId !== id) return; // another conversation was chosen meanwhile
      this.setState('idle');
      this.renderBranch(messages);
      await this.followUnfinished(messages);
    }

    /** The conversation's active branch, each message with its versions' ids. */
    async branch(id) {
      return (await this.api.json('GET', `/api/v1/sessions/${encodeURIComponent(id)}/messages?include=siblings`)).messages || [];
    }

    renderBranch(messages) {
      this.log.replaceChildren();
      for (const message of messages) this.renderStoredMessage(message);
      if (!messages.length) this.showEmptyState();
      this.scrollToBottom();
    }

    /**
     * After a turn: the messages shown get their stored ids, versions and actions. Should what is shown
     * differ from the stored branch (an answer that failed before any text), the branch is shown again.
     */
    async syncBranch() {
      const id = this.sessionId;
      if (!id) return;
      let messages;
      try { messages = await this.branch(id); } catch { return; } // the actions come with the next load
      if (this.sessionId !== id || this.turn) return;
      const nodes = [...this.log.children].filter((node) => node.dataset.role && !node.hidden);
      const same = nodes.length === messages.length && nodes.every((node, i) => node.dataset.role === messages[i].role);
      if (!same) { this.renderBranch(messages); return; }
      nodes.forEach((node, i) => this.decorate(node, messages[i]));
    }

    /** A stored message's actions: ‹ n/m › between its versions; edit (a question) or regenerate (an answer). */
    decorate(node, message) {
      const actions = node.querySelector(':scope > .msg-actions');
      if (!actions || !message || !message.id) return;
      const button = (props, glyph, label) => el('button', { type: 'button', class: 'msg-action', ...props },
        el('span', { 'aria-hidden': 'true' }, glyph), label ? el('span', { class: 'msg-action-label' }, label) : null);
      const parts = [];
      const siblings = message.siblings || {};
      const ids = Array.isArray(siblings.ids) ? siblings.ids : [];
      if (siblings.count > 1 && ids.length === siblings.count) {
        const at = siblings.index;
        parts.push(el('span', { class: 'versions', role: 'group', 'aria-label': 'Versions', 'data-testid': 'versions' },
          button({ 'data-testid': 'version-prev', 'aria-label': 'Previous version', title: 'Previous version', disabled: at <= 1,
            onclick: () => this.switchTo(ids[at - 2]) }, '\u2039'),
          el('span', { class: 'version', 'data-testid': 'version' }, `${at}/${siblings.count}`),
          button({ 'data-testid': 'version-next', 'aria-label': 'Next version', title: 'Next version', disabled: at >= siblings.count,
            onclick: () => this.switchTo(ids[at]) }, '\u203A')));
      }
      if (message.role === 'user') {
        parts.push(button({ 'data-testid': 'edit', 'aria-label': 'Edit this question', title: 'Edit',
          onclick: () => this.startEdit(node, message) }, '\u270E', 'Edit'));
      } else if (message.role === 'assistant' && message.parent_message_id) {
        parts.push(button({ 'data-testid': 'regenerate', 'aria-label': 'Regenerate this answer', title: 'Regenerate',
          onclick: () => this.regenerate(node, message) }, '\u21BB', 'Regenerate'));
      }
      actions.replaceChildren(...parts);
      actions.hidden = parts.length === 0;
    }

    /** Whether a new turn may start now; says why not in the status line. */
    idleForBranching() {
      if (!this.turn) return true;
      this.status.textContent = this.busyNote(this.turn);
      return false;
    }

    /** Shows another version: the branch through message `id`. */
    async switchTo(id) {
      if (!id || !this.sessionId || !this.idleForBranching()) return;
      const sessionId = this.sessionId;
      try {
        const { messages } = await this.api.json('POST', `/api/v1/sessions/${encodeURIComponent(sessionId)}/active-leaf`, { message_id: id });
        if (this.sessionId !== sessionId || this.turn) return;
        this.renderBranch(messages || []);
      } catch (error) {
        this.showError(`Cannot show that version: ${this.describe(error)}`, null, { transient: true });
      }
    }

    /** The question becomes a small editor in place; sending it asks the edited question on a new branch. */
    startEdit(node, message) {
      if (!this.idleForBranching()) return;
      const bubble = node.querySelector(':scope > .bubble');
      const actions = node.querySelector(':scope > .msg-actions');
      if (!bubble || node.querySelector('.editor')) return;
      const area = el('textarea', { class: 'edit-input', rows: '3', 'data-testid': 'edit-input', 'aria-label': 'Edit your question' });
      area.value = message.content || '';
      const cancel = () => { editor.replaceWith(bubble); actions.hidden = false; };
      const editor = el('form', { class: 'editor', onsubmit: (event) => {
        event.preventDefault();
        const content = area.value.trim();
        if (content) this.sendEdit(node, message, content);
      } }, area, el('div', { class: 'editor-actions' },
        el('button', { type: 'button', class: 'secondary', 'data-testid': 'edit-cancel', onclick: cancel }, 'Cancel'),
        el('button', { type: 'submit', class: 'primary', 'data-testid': 'edit-send' }, 'Send')));
      area.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
        if (event.key === 'Escape') { event.stopPropagation(); cancel(); }
      });
      bubble.replaceWith(editor);
      actions.hidden = true;
      area.focus();
    }

    /** Removes `node` and everything shown after it: the part of the branch being replaced. */
    removeFrom(node) {
      while (node.nextSibling) node.nextSibling.remove();
      node.remove();
    }

    sendEdit(node, message, content) {
      if (!this.idleForBranching()) return;
      this.removeFrom(node);
      this.log.append(this.userBubble(content));
      this.scrollToBottom();
      this.setState('streaming', 'Thinking…');
      this.postTurn(this.sessionId, `/api/v1/messages/${encodeURIComponent(message.id)}/edit`, { content },
        (error) => this.branchNotStarted(error));
    }

    regenerate(node, message) {
      if (!this.idleForBranching()) return;
      this.removeFrom(node);
      this.setState('streaming', 'Thinking…');
      this.postTurn(this.sessionId, `/api/v1/messages/${encodeURIComponent(message.id)}/regenerate`, {},
        (error) => this.branchNotStarted(error));
    }

    /** An edit or a regeneration was refused: the conversation as stored, and why. */
    async branchNotStarted(error) {
      const id = this.sessionId;
      try {
        const messages = await this.branch(id);
        if (this.sessionId === id && !this.turn) this.renderBranch(messages);
      } catch { /* the error below says enough */ }
      this.showError(`That was not sent: ${this.describe(error)}`, null, { transient: true });
    }

    renderStoredMessage(message) {
      if (message.role === 'user') {
        const node = this.userBubble(message.content);
        this.log.append(node);
        this.decorate(node, message);
      } else if (message.role === 'assistant') {
        const view = new AnswerView(this);
        view.setCitations(message.citations);
        for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
          if (call && call.id) view.setToolStatus(call.id, call.name || 'tool', call.is_error ? 'failed' : 'done');
        }
        view.setText(message.content || '');
        view.finish(message.status === 'incomplete' ? 'This answer is incomplete.' : cutNote(message.finish_reason));
        view.offerFeedback(message.id);
        this.log.append(view.root);
        this.decorate(view.root, message);
      }
    }

    /** After a reload: a last question without an answer may belong to a run still going or paused. */
    async followUnfinished(messages) {
      const last = messages[messages.length - 1];
      if (!last || last.role !== 'user' || !last.run_id) return;
      let run;
      try {
        run = await this.api.json('GET', `/api/v1/runs/${encodeURIComponent(last.run_id)}`);
      } catch {
        return; // the conversation is shown; a missing run only means nothing to follow
      }
      if (this.sessionId !== last.session_id || this.turn) return;
      // Whatever its status: a run that ended since the messages were read replays its answer and closes;
      // one still going (or waiting for approval) continues live.
      const turn = this.newTurn(last.session_id);
      turn.runId = run.id;
      this.drive(turn, null);
    }

    userBubble(text) {
      return el('div', { class: 'msg user', 'data-testid': 'message', 'data-role': 'user' }, el('div', { class: 'bubble' }, text),
        el('div', { class: 'msg-actions', hidden: true }));
    }

    // ---- prompts: message templates of the tenant's MCP servers, filled in into the composer

    /** Once per page: the button shows only when the tenant has prompts; a failure only leaves it hidden. */
    async loadPrompts() {
      try {
        const { prompts } = await this.api.json('GET', '/api/v1/mcp-prompts');
        this.prompts = (Array.isArray(prompts) ? prompts : []).filter((prompt) => prompt && prompt.qualified_name);
      } catch {
        this.prompts = [];
      }
      this.promptsButton.hidden = this.prompts.length === 0;
    }

    togglePrompts(show = this.promptsPanel.hidden) {
      if (!show) return this.closePrompts();
      // One overlay at a time: the conversations list goes (focus is about to move into the prompts).
      this.sessionsPanel.hidden = true;
      this.sessionsButton.setAttribute('aria-expanded', 'false');
      this.promptsShown += 1;
      this.promptsPanel.hidden = false;
      this.promptsButton.setAttribute('aria-expanded', 'true');
      return this.showPromptList();
    }

    /** Closes the prompts; a fill still under way is dropped. Focus goes back to the button that opened them. */
    closePrompts({ focus = true } = {}) {
      if (this.promptsPanel.hidden) return;
      this.promptsShown += 1;
      this.promptsPanel.hidden = true;
      this.promptsPanel.replaceChildren();
      this.promptsButton.setAttribute('aria-expanded', 'false');
      if (focus) this.promptsButton.focus();
    }

    /** The panel's heading (a prompt's own name keeps its case), its close button, and a live line (this.promptNote). */
    promptsView(title, titleClass, ...content) {
      this.promptNote = el('div', { class: 'prompt-note', role: 'status', 'aria-live': 'polite', 'data-testid': 'prompt-note' });
      this.promptsPanel.replaceChildren(el('div', { class: 'prompts-head' },
        el('div', { id: 'sb-prompts-title', class: titleClass }, title),
        el('button', { type: 'button', class: 'icon-button', 'data-testid': 'prompts-close', 'aria-label': 'Close prompts',
          title: 'Close', onclick: () => this.closePrompts() }, icon('close'))), ...content, this.promptNote);
    }

    showPromptList() {
      const items = this.prompts.map((prompt) => el('li', {}, el('button', { type: 'button', class: 'prompt', 'data-testid': 'prompt',
        'data-name': prompt.qualified_name, title: prompt.qualified_name, onclick: () => this.pickPrompt(prompt) },
      el('span', { class: 'prompt-title' }, prompt.title || prompt.name || prompt.qualified_name),
      prompt.description ? el('span', { class: 'prompt-description' }, prompt.description) : null)));
      this.promptsView('Prompts', 'prompts-title', el('ul', { class: 'prompt-items', 'aria-labelledby': 'sb-prompts-title' }, ...items));
      this.promptsPanel.querySelector('.prompt')?.focus();
    }

    /** A prompt without arguments is filled in at once; one with arguments asks for them first. */
    pickPrompt(prompt) {
      const args = (Array.isArray(prompt.arguments) ? prompt.arguments : []).filter((argument) => argument && argument.name);
      if (args.length) this.showPromptForm(prompt, args);
      else this.fillPrompt(prompt, {}, [...this.promptsPanel.querySelectorAll('button.prompt')]);
    }

    /** One labelled field per argument; Insert waits until every required one has a value. */
    showPromptForm(prompt, args) {
      const fields = args.map((argument, index) => {
        const id = `sb-prompt-argument-${index}`; // our ids, never the server's names
        const hint = argument.description ? el('div', { id: `${id}-hint`, class: 'prompt-hint' }, argument.description) : null;
        const input = el('input', { id, type: 'text', class: 'prompt-input', 'data-testid': 'prompt-argument',
          'data-name': argument.name, required: Boolean(argument.required), autocomplete: 'off',
          'aria-describedby': hint ? hint.id : null, oninput: () => update() });
        const label = el('label', { for: id }, argument.name,
          argument.required ? el('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null);
        return { argument, input, node: el('div', { class: 'prompt-field' }, label, input, hint) };
      });
      const insert = el('button', { type: 'submit', class: 'primary', 'data-testid': 'prompt-insert', disabled: true }, 'Insert');
      const back = el('button', { type: 'button', class: 'secondary', 'data-testid': 'prompt-back',
        onclick: () => this.showPromptList() }, 'Back');
      const missing = () => fields.some(({ argument, input }) => argument.required && !input.value.trim());
      const update = () => { insert.disabled = missing(); };
      const form = el('form', { class: 'prompt-form', 'data-testid': 'prompt-form', 'aria-labelledby': 'sb-prompts-title',
        onsubmit: (event) => {
          event.preventDefault();
          if (missing()) return;
          // An optional argument left empty is not sent: the server's default applies.
          const values = Object.fromEntries(fields.map(({ argument, input }) => [argument.name, input.value.trim()])
            .filter(([, value]) => value));
          this.fillPrompt(prompt, values, [insert, back, ...fields.map(({ input }) => input)]);
        } },
      prompt.description ? el('p', { class: 'prompt-description' }, prompt.description) : null,
      ...fields.map(({ node }) => node),
      fields.some(({ argument }) => argument.required) ? el('p', { class: 'prompt-legend', 'aria-hidden': 'true' }, '* required') : null,
      el('div', { class: 'editor-actions' }, back, insert));
      this.promptsView(prompt.title || prompt.name || prompt.qualified_name, 'prompt-heading', form);
      fields[0].input.focus();
    }

    /**
     * Asks the prompt's server to fill it in, and puts its user messages, a blank line between them, in the
     * message box (after anything already typed). Assistant messages are left out: what is sent goes as the
     * person's own message, and words the server wrote for the assistant are not theirs to say.
     */
    async fillPrompt(prompt, values, controls) {
      const shown = this.promptsShown;
      controls.forEach((control) => { control.disabled = true; });
      this.promptNote.textContent = 'Filling in the prompt…';
      const failed = (message) => {
        const [state, status] = [this.host.dataset.state, this.status.textContent];
        this.closePrompts({ focus: false });
        this.showError(message, null, { transient: true });
        if (this.turn) this.setState(state, status); // an answer under way goes on, with its Stop button
        this.promptsButton.focus();
      };
      let messages;
      try {
        const path = `/api/v1/mcp-prompts/${encodeURIComponent(prompt.qualified_name)}/fill`;
        ({ messages } = await this.api.json('POST', path, { arguments: values }));
      } catch (error) {
        if (shown === this.promptsShown) failed(`The prompt was not filled in: ${this.describe(error)}`);
        return;
      }
      if (shown !== this.promptsShown) return; // closed meanwhile: the person changed their mind
      const text = (Array.isArray(messages) ? messages : [])
        .filter((message) => message && message.role === 'user' && typeof message.text === 'string' && message.text.trim())
        .map((message) => message.text.trim()).join('\n\n');
      if (!text) { failed('This prompt has no text for you to send.'); return; }
      this.closePrompts({ focus: false });
      const typed = this.input.value.trimEnd();
      this.input.value = typed ? `${typed}\n\n${text}` : text;
      this.resizeInput();
      this.input.focus();
      this.input.setSelectionRange(this.input.value.length, this.input.value.length);
    }

    // ---- sending and following a turn

    newTurn(sessionId) {
      const view = new AnswerView(this);
      const turn = { sessionId, runId: null, lastSeq: 0, view, ended: false, paused: false,
        waitingFor: [], decided: new Set(), asked: new Set(), abort: new AbortController() };
      this.turn = turn;
      this.log.querySelector('.empty')?.remove();
      this.log.append(view.root);
      this.scrollToBottom();
      return turn;
    }

    async send() {
      const content = this.input.value.trim();
      if (!content) return;
      if (this.turn) { // one answer at a time; the typed text stays in the box
        this.status.textContent = this.busyNote(this.turn);
        return;
      }
      // The empty state, and errors about a message that is being sent again, are past.
      this.log.querySelectorAll('.empty, [data-transient]').forEach((node) => node.remove());
      const bubble = this.userBubble(content);
      this.log.append(bubble);
      this.scrollToBottom();
      this.input.value = '';
      this.resizeInput();
      this.setState('streaming', 'Thinking…');
      const restore = (error) => { // not accepted: the question goes back into the box
        bubble.remove();
        if (!this.input.value) this.input.value = content;
        this.resizeInput();
        this.showError(`Your message was not sent: ${this.describe(error)}`, null, { transient: true });
      };
      let sessionId = this.sessionId;
      if (!sessionId) {
        try {
          sessionId = (await this.api.json('POST', '/api/v1/sessions', {})).id;
        } catch (error) {
          restore(error);
          return;
        }
        this.sessionId = sessionId;
      }
      await this.postTurn(sessionId, `/api/v1/sessions/${encodeURIComponent(sessionId)}/messages`, { content }, restore);
    }

    /**
     * Starts a turn with `POST path` (a question, an edit or a regeneration) and follows it; `restore(error)`
     * when the server does not accept it.
     */
    async postTurn(sessionId, path, body, restore) {
      const turn = this.newTurn(sessionId);
      // One key per question: when the network fails before the answer starts, the question is sent
      // again with it, and the server gives the turn the first attempt started, never a second one.
      const idempotencyKey = newIdempotencyKey();
      let response;
      for (let attempt = 0; !response; attempt += 1) {
        try {
          response = await this.api.stream('POST', path, { body, idempotencyKey, signal: turn.abort.signal });
        } catch (error) {
          if (turn.abort.signal.aborted) return;
          const networkFailed = !(error instanceof ApiError) || error.code === 'idempotency_key_in_progress';
          if (networkFailed && attempt < RECONNECT_DELAYS_MS.length) {
            await sleep(RECONNECT_DELAYS_MS[attempt]);
            if (turn.abort.signal.aborted) return;
            continue;
          }
          turn.view.root.remove();
          this.turn = null;
          restore(error);
          return;
        }
      }
      this.drive(turn, response);
    }

    /**
     * Follows a turn to its end: reads the stream it has, and whenever the connection drops before a
     * terminal event, reconnects to the run's events after the last seq seen, with backoff.
     */
    async drive(turn, response) {
      // One follower per turn: a newer drive (after an approval) makes this one stop at its next step.
      turn.drives = (turn.drives || 0) + 1;
      const generation = turn.drives;
      const superseded = () => turn.drives !== generation;
      let failures = 0;
      let fatal = null;
      for (;;) {
        if (response) {
          const before = turn.lastSeq;
          try {
            await readEvents(response, (frame) => this.onFrame(turn, frame));
          } catch { /* the connection broke: reconnect below */ }
          if (turn.lastSeq > before) failures = 0; // progress: the next drop starts the backoff afresh
        }
        if (turn.abort.signal.aborted || this.turn !== turn || superseded()) return;
        if (turn.ended || turn.paused || turn.awaitedApproval) return;
        if (!turn.runId) { // nothing to resume from: show what the server has instead
          this.turn = null;
          turn.view.root.remove();
          this.showError('The connection was lost before the answer started.', () => this.selectSession(turn.sessionId));
          return;
        }
        if (response || failures > 0) {
          if (failures >= RECONNECT_DELAYS_MS.length) break;
          this.setState('reconnecting', 'Reconnecting…');
          await sleep(RECONNECT_DELAYS_MS[failures]);
          if (turn.abort.signal.aborted || superseded()) return;
        }
        failures += 1;
        try {
          response = await this.api.stream('GET', `/api/v1/runs/${encodeURIComponent(turn.runId)}/events`,
            { lastEventId: turn.lastSeq, signal: turn.abort.signal });
        } catch (error) {
          response = null;
          // The server answered and refused: retrying will not help.
          if (error instanceof ApiError && error.status < 500 && error.status !== 429) { fatal = this.describe(error); break; }
        }
      }
      if (turn.abort.signal.aborted || this.turn !== turn) return;
      turn.view.finish();
      this.showError(fatal || 'The connection to the server was lost.', () => {
        this.setState('reconnecting', 'Reconnecting…');
        this.drive(turn, null);
      });
    }

    /** One SSE frame: events at or below the last seq seen were already shown (a replay after resuming). */
    onFrame(turn, frame) {
      let data;
      try { data = JSON.parse(frame.data); } catch { return false; }
      const seq = Number(data.seq ?? frame.id);
      if (turn.abort.signal.aborted) return true;
      if (!Number.isFinite(seq) || seq <= turn.lastSeq) return false;
      turn.lastSeq = seq;
      if (!turn.runId && data.run_id) turn.runId = data.run_id;
      const name = data.type || frame.name;
      this.onEvent(turn, name, data);
      return ENDS_STREAM.has(name);
    }

    onEvent(turn, name, data) {
      const { view } = turn;
      if (this.host.dataset.state === 'reconnecting' || this.host.dataset.state === 'error') {
        this.setState('streaming', view.text ? '' : 'Thinking…');
      }
      if (TOOL_STATUS[name]) { // what the call shows: its status, and the reason, note or error given
        // A question is shown in its form, not as the call's detail.
        const detail = name === 'tool_call.awaiting_input' ? null : data.reason || data.note || data.message || data.code;
        view.setToolStatus(data.tool_call_id, data.name, TOOL_STATUS[name], detail);
        if (name === 'tool_call.requested') view.showArguments(data.tool_call_id, data.arguments);
        if (name === 'tool_call.awaiting_approval') {
          view.askApproval(data.tool_call_id, (approve) => this.decide(turn, data.tool_call_id, approve));
        }
        if (name === 'tool_call.awaiting_input') {
          turn.asked.add(data.tool_call_id);
          view.askInput(data.tool_call_id, data, (action, content) => this.giveInput(turn, data.tool_call_id, action, content));
        }
        return;
      }
      switch (name) {
        case 'run.started':
          if (!this.sessionId) this.sessionId = data.session_id;
          break;
        case 'retrieval': // what the model was given: markers link to these while the answer streams
          view.setCitations(data.citations);
          break;
        case 'citations': // the answer is written: only the passages it cites are its sources
          view.setCitations(data.citations);
          break;
        case 'message.delta':
          if (!view.text) this.setState('streaming', '');
          view.append(data.text || '');
          break;
        case 'run.awaiting_approval':
          turn.paused = true;
          // This stream is over: whoever resumes the run follows it from here, not the loop that read it.
          turn.awaitedApproval = true;
          turn.waitingFor = data.tool_call_ids || [];
          this.setState('awaiting-approval', this.pausedNote(turn));
          this.resumeIfDecided(turn);
          break;
        case 'run.completed':
        case 'run.failed':
        case 'run.cancelled':
          this.endTurn(turn, name, data);
          break;
        default: // usage, and kinds this version does not know
      }
    }

    endTurn(turn, name, data) {
      turn.ended = true;
      turn.view.finish(name === 'run.cancelled' ? 'Stopped.' : cutNote(data.finish_reason));
      if (name === 'run.completed') turn.view.offerFeedback(data.message_id);
      this.turn = null;
      if (name === 'run.failed') this.showError(`The answer failed: ${data.message || data.code}`);
      else this.setState('idle');
      this.loadSessions(); // the conversation's title and order changed
      this.syncBranch(); // the messages' ids: their versions, edit and regenerate
    }

    /** Sends a decision; resolves true once the server has one (ours, or an earlier one: 409). */
    async decide(turn, toolCallId, approve) {
      const path = `/api/v1/tool-calls/${encodeURIComponent(toolCallId)}/${approve ? 'approve' : 'deny'}`;
      for (let attempt = 0; ; attempt += 1) {
        try {
          await this.api.json('POST', path, {});
          break;
        } catch (error) {
          // The pause is recorded a moment after the call is announced: ask again shortly.
          if (error instanceof ApiError && error.code === 'run_not_waiting' && attempt < 5) { await sleep(400); continue; }
          if (!(error instanceof ApiError && error.status === 409)) {
            this.showError(`Your decision was not saved: ${this.describe(error)}`);
            this.setState('awaiting-approval', this.pausedNote(turn));
            return false;
          }
          break; // already decided, or the run ended: its events tell the rest
        }
      }
      turn.decided.add(toolCallId);
      turn.view.setToolStatus(toolCallId, null, approve ? 'running' : 'denied');
      this.resumeIfDecided(turn);
      return true;
    }

    /**
     * Sends the answer to a call's question; resolves to null once the server has one (ours, or an earlier
     * one: 409), else to what to say by the form: the server's reason when the answer does not fit (422).
     */
    async giveInput(turn, toolCallId, action, content) {
      const path = `/api/v1/tool-calls/${encodeURIComponent(toolCallId)}/input`;
      for (let attempt = 0; ; attempt += 1) {
        try {
          await this.api.json('POST', path, action === 'accept' ? { action, content } : { action });
          break;
        } catch (error) {
          // The pause is recorded a moment after the question is announced: ask again shortly.
          if (error instanceof ApiError && error.code === 'run_not_waiting' && attempt < 5) { await sleep(400); continue; }
          if (error instanceof ApiError && error.status === 422) return error.message;
          if (!(error instanceof ApiError && error.status === 409)) {
            this.showError(`Your answer was not saved: ${this.describe(error)}`);
            this.setState('awaiting-approval', this.pausedNote(turn));
            return '';
          }
          break; // already answered, or the run ended: its events tell the rest
        }
      }
      turn.decided.add(toolCallId);
      turn.view.setToolStatus(toolCallId, null, 'running');
      this.resumeIfDecided(turn);
      return null;
    }

    /** What a paused run waits for, in the status line. */
    pausedNote(turn) {
      return turn.waitingFor.some((id) => turn.asked.has(id)) ? 'A tool call is waiting for your answer.'
        : 'Waiting for your decision on a tool call.';
    }

    /** Why a new question cannot be sent while `turn` goes on. */
    busyNote(turn) {
      if (!turn.paused) return 'Wait for the answer, or stop it.';
      return turn.waitingFor.some((id) => turn.asked.has(id)) ? 'Answer the tool call first.' : 'Approve or deny the tool call first.';
    }

    /** Once the run has paused and every call it waits for is decided, follow the rest of its events. */
    resumeIfDecided(turn) {
      if (!turn.paused || this.turn !== turn) return;
      if (!turn.waitingFor.every((id) => turn.decided.has(id))) return;
      turn.paused = false;
      turn.awaitedApproval = false;
      this.setState('streaming', 'Thinking…');
      this.drive(turn, null);
    }

    async cancelRun() {
      const turn = this.turn;
      if (!turn || !turn.runId) return;
      try {
        await this.api.json('POST', `/api/v1/runs/${encodeURIComponent(turn.runId)}/cancel`, {});
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409)) this.showError(`Cannot stop the answer: ${this.describe(error)}`);
      }
      this.input.focus(); // run.cancelled arrives on the stream
    }
  }

  // ---------------------------------------------------------------- styles (inside the shadow root only)

  const CSS = `
:host { all: initial; }
:host(.sb-inline) { display: block; height: 100%; }
.root { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--text);
  -webkit-font-smoothing: antialiased; --accent: #4f46e5; --accent-text: #fff; --bg: #fff; --text: #1f2430; --muted: #6b7280;
  --line: #e5e7eb; --soft: #f3f4f6; --code: #eef0f4; --error-bg: #fef2f2; --error-line: #fecaca; --error-text: #991b1b; }
@media (prefers-color-scheme: dark) { .root { --accent: #6d67f0; --bg: #17191f; --text: #e8eaf0; --muted: #9aa1ae;
  --line: #2c303a; --soft: #23262e; --code: #2b2f39; --error-bg: #3a1518; --error-line: #6b2228; --error-text: #fecaca; } }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, textarea, input, select { font: inherit; color: inherit; }
button { cursor: pointer; } button:disabled { cursor: default; opacity: .55; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483646; width: 56px; height: 56px; border: 0;
  border-radius: 50%; background: var(--accent); color: var(--accent-text); display: grid; place-items: center;
  box-shadow: 0 6px 20px rgba(0,0,0,.22); transition: transform .15s ease; }
.launcher:hover { transform: scale(1.05); } .launcher svg { width: 26px; height: 26px; }
.panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483647; width: 380px; height: 560px;
  max-height: calc(100vh - 108px); display: flex; flex-direction: column; overflow: hidden; background: var(--bg);
  border: 1px solid var(--line); border-radius: 16px; box-shadow: 0 12px 40px rgba(0,0,0,.18); }
.inline { height: 100%; }
.inline .panel { position: relative; right: auto; bottom: auto; width: 100%; height: 100%; max-height: none; min-height: 420px; }
header { display: flex; align-items: center; gap: 6px; padding: 10px 10px 10px 8px; border-bottom: 1px solid var(--line); }
.title { flex: 1; font-weight: 600; font-size: 15px; }
.icon-button, .text-button { display: inline-flex; align-items: center; gap: 4px; border: 0; background: none;
  border-radius: 8px; padding: 6px; color: var(--muted); }
.text-button { font-size: 13px; padding: 6px 8px; } .text-button svg { width: 16px; height: 16px; }
.icon-button:hover, .text-button:hover { background: var(--soft); color: var(--text); }
.body { position: relative; flex: 1; min-height: 0; display: flex; }
.log { flex: 1; overflow-y: auto; padding: 14px 14px 6px; display: flex; flex-direction: column; gap: 12px; }
.empty { margin: auto; text-align: center; color: var(--muted); display: grid; gap: 4px; padding: 24px; }
.empty strong { color: var(--text); font-size: 16px; }
.sessions { position: absolute; inset: 0; background: var(--bg); overflow-y: auto; padding: 10px; }
.sessions-title, .sources-title, .prompts-title { font-size: 11.5px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.sessions-title { margin: 4px 6px 8px; }
.session-items { list-style: none; margin: 0; padding: 0; display: grid; gap: 2px; }
.session { width: 100%; text-align: left; border: 0; background: none; border-radius: 10px; padding: 8px 10px; display: grid; }
.session:hover, .session[aria-current="true"] { background: var(--soft); }
.session-title { font-weight: 500; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.prompts { position: absolute; left: 8px; right: 8px; bottom: 6px; max-height: calc(100% - 12px); overflow-y: auto;
  background: var(--bg); border: 1px solid var(--line); border-radius: 12px; box-shadow: 0 6px 24px rgba(0,0,0,.14); padding: 6px 8px 8px; }
.prompts-head { display: flex; align-items: center; justify-content: space-between; gap: 8px; margin-left: 6px; }
.prompt-heading { font-weight: 600; overflow-wrap: anywhere; }
.prompts-head .icon-button svg { width: 16px; height: 16px; }
.prompt-items { list-style: none; margin: 0; padding: 0; display: grid; gap: 2px; }
.prompt { width: 100%; text-align: left; border: 0; background: none; border-radius: 10px; padding: 7px 10px; display: grid; gap: 1px; }
.prompt:hover:not(:disabled) { background: var(--soft); }
.prompt-title { font-weight: 500; overflow-wrap: anywhere; }
.prompt-description, .prompt-hint, .prompt-legend { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.prompt-form { display: grid; gap: 10px; padding: 4px 6px 0; } .prompt-form p { margin: 0; }
.prompt-field { display: grid; gap: 3px; } .prompt-field label { font-size: 13px; font-weight: 500; overflow-wrap: anywhere; }
.prompt-input { width: 100%; border: 1px solid var(--line); border-radius: 8px; padding: 6px 10px; background: var(--bg); }
.prompt-input:focus-visible { outline-offset: 0; border-color: transparent; }
.required { color: var(--error-text); }
.prompt-note { font-size: 12px; color: var(--muted); margin: 4px 6px 0; } .prompt-note:empty { display: none; }
.session-date, .muted { font-size: 12px; color: var(--muted); } .muted { padding: 8px 10px; }
.msg { display: flex; flex-direction: column; max-width: 100%; } .msg.user { align-items: flex-end; }
.bubble { max-width: 88%; padding: 9px 13px; border-radius: 16px; overflow-wrap: anywhere; }
.user .bubble { background: var(--accent); color: var(--accent-text); border-bottom-right-radius: 5px; white-space: pre-wrap; }
.assistant .bubble { background: var(--soft); border-bottom-left-radius: 5px; align-self: flex-start; }
.bubble.pending .answer::after { content: "• • •"; color: var(--muted); letter-spacing: 2px; animation: pulse 1.2s infinite ease-in-out; }
@keyframes pulse { 50% { opacity: .3; } }
.answer > :first-child { margin-top: 0; } .answer > :last-child { margin-bottom: 0; }
.answer p, .answer ul, .answer ol, .answer pre, .answer blockquote { margin: 0 0 .6em; }
.answer ul, .answer ol { padding-left: 1.3em; }
.answer h3, .answer h4, .answer h5, .answer h6 { margin: .8em 0 .3em; font-size: 1em; font-weight: 650; } .answer h3 { font-size: 1.1em; }
.answer code, .source-path, .tool-name { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.answer code { background: var(--code); padding: 1px 4px; border-radius: 4px; }
.answer pre, .tool pre { background: var(--code); padding: 8px 10px; border-radius: 8px; overflow-x: auto; }
.answer pre code { background: none; padding: 0; white-space: pre; }
.answer blockquote { border-left: 3px solid var(--line); padding-left: 10px; color: var(--muted); }
.answer hr { border: 0; border-top: 1px solid var(--line); } .answer a { color: var(--accent); } .answer sup { line-height: 0; }
.cite { text-decoration: none; font-size: 11px; font-weight: 600; padding: 0 1px; }
.note { font-size: 12px; color: var(--muted); margin: 4px 4px 0; }
.sources { margin: 6px 2px 0; font-size: 12.5px; color: var(--muted); max-width: 88%; }
.source-list { margin: 2px 0 0; padding-left: 1.6em; } .source-list li { padding: 1px 4px; border-radius: 4px; }
.source-line { display: block; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.source-path { font-size: 12px; color: var(--text); }
.flash { animation: flash 1.6s ease-out; }
@keyframes flash { from { background: color-mix(in srgb, var(--accent) 25%, transparent); } }
.tools { list-style: none; margin: 0 0 6px; padding: 0; display: grid; gap: 6px; max-width: 88%; }
.tool { border: 1px solid var(--line); border-radius: 10px; padding: 7px 10px; font-size: 13px; }
.tool[data-status="awaiting-approval"], .tool[data-status="awaiting-input"] { border-color: var(--accent); }
.tool-head { display: flex; justify-content: space-between; gap: 8px; align-items: center; }
.tool-name { overflow-wrap: anywhere; } .tool-status { font-size: 12px; color: var(--muted); white-space: nowrap; }
.tool-status::before { content: "●"; margin-right: 4px; color: #d97706; }
.tool[data-status="done"] .tool-status::before { color: #16a34a; }
.tool[data-status="denied"] .tool-status::before, .tool[data-status="failed"] .tool-status::before { color: #dc2626; }
.tool-detail { color: var(--muted); font-size: 12.5px; margin-top: 3px; overflow-wrap: anywhere; }
.tool details { margin-top: 4px; font-size: 12px; } .tool summary { color: var(--muted); cursor: pointer; }
.tool pre { margin: 4px 0 0; padding: 6px 8px; font-size: 11.5px; }
.feedback { display: flex; align-items: center; gap: 2px; margin: 4px 2px 0; }
.rate { display: inline-grid; place-items: center; border: 0; background: none; border-radius: 8px; padding: 4px; color: var(--muted); }
.rate { font-size: 14px; line-height: 1; filter: grayscale(1); opacity: .7; } .rate:hover { background: var(--soft); color: var(--text); }
.rate:hover, .rate[aria-pressed="true"] { filter: none; opacity: 1; } .rate[aria-pressed="true"] { outline: 1px solid var(--accent); }
.feedback-note { font-size: 12px; color: var(--muted); margin-left: 6px; }
.msg-actions { display: flex; align-items: center; gap: 2px; margin: 2px 2px 0; font-size: 12px; color: var(--muted); }
.msg-action { display: inline-flex; align-items: center; gap: 3px; border: 0; background: none; border-radius: 8px;
  padding: 2px 6px; color: var(--muted); font-size: 12px; line-height: 1.4; }
.msg-action:hover:not(:disabled) { background: var(--soft); color: var(--text); }
.versions { display: inline-flex; align-items: center; } .version { min-width: 2.4em; text-align: center; font-variant-numeric: tabular-nums; }
.editor { width: 88%; display: grid; gap: 6px; }
.edit-input { width: 100%; resize: vertical; border: 1px solid var(--line); border-radius: 12px; padding: 8px 12px;
  background: var(--bg); line-height: 1.4; }
.editor-actions { display: flex; justify-content: flex-end; gap: 8px; }
.tool-actions { display: flex; gap: 8px; margin-top: 8px; }
.input-form { margin-top: 6px; } .input-form fieldset { border: 0; margin: 0; padding: 0; min-width: 0; display: grid; gap: 8px; }
.input-question { padding: 0; margin-bottom: 8px; font-weight: 500; overflow-wrap: anywhere; white-space: pre-wrap; }
.input-check { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; } .input-check .prompt-hint { flex-basis: 100%; }
.input-note { font-size: 12.5px; color: var(--error-text); overflow-wrap: anywhere; } .input-note:empty { display: none; }
.input-form .tool-actions { margin-top: 0; }
.primary, .secondary { border-radius: 8px; padding: 5px 14px; font-size: 13px; font-weight: 500; border: 1px solid var(--accent); }
.primary { background: var(--accent); color: var(--accent-text); } .secondary { background: none; color: var(--accent); }
.msg.error { flex-direction: row; align-items: center; gap: 10px; justify-content: space-between; background: var(--error-bg);
  border: 1px solid var(--error-line); color: var(--error-text); border-radius: 10px; padding: 8px 12px; font-size: 13px; }
.msg.error .secondary { border-color: var(--error-text); color: var(--error-text); flex: none; }
.status { min-height: 18px; padding: 0 16px; font-size: 12px; color: var(--muted); }
.composer { display: flex; align-items: flex-end; gap: 8px; padding: 8px 10px 10px; border-top: 1px solid var(--line); }
.composer textarea { flex: 1; resize: none; border: 1px solid var(--line); border-radius: 12px; padding: 9px 12px;
  background: var(--bg); max-height: 140px; line-height: 1.4; }
.composer textarea:focus-visible { outline: 2px solid var(--accent); outline-offset: 0; border-color: transparent; }
.prompts-button { flex: none; width: 38px; height: 38px; justify-content: center; border-radius: 50%; }
.prompts-button[aria-expanded="true"] { background: var(--soft); color: var(--text); }
.send { flex: none; width: 38px; height: 38px; border: 0; border-radius: 50%; background: var(--accent);
  color: var(--accent-text); display: grid; place-items: center; }
.stop { background: var(--text); color: var(--bg); }
@media (max-width: 480px) {
  .root:not(.inline) .panel { right: 0; bottom: 0; width: 100vw; height: 100dvh; max-height: none; border-radius: 0; border: 0; }
  .root.open:not(.inline) .launcher { display: none; } }
@media (prefers-reduced-motion: reduce) { * { animation: none !important; transition: none !important; } }
`;

  // ---------------------------------------------------------------- entry points

  function mount(options = {}) {
    if (!options.token) throw new Error('Switchboard.mount: a token (string or async function) is required');
    const base = options.url || (SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin);
    const widget = new Widget({ ...options, url: base });
    return {
      element: widget.host,
      open: () => widget.open(),
      close: () => widget.close(),
      destroy: () => { widget.reset(null); widget.host.remove(); },
    };
  }

  window.Switchboard = Object.freeze({ mount });

  const data = SCRIPT ? SCRIPT.dataset : {};
  if (data.switchboardToken) {
    const start = () => mount({ url: data.switchboardUrl, token: data.switchboardToken, open: data.switchboardOpen === 'true' });
    if (document.body) start(); else document.addEventListener('DOMContentLoaded', start, { once: true });
  }
})();
