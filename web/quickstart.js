// Parlour Meet: a meeting app on the unmodified twilio-video SDK, served by `parlour serve`.
// The only Parlour-specific parts are the connect options `wsServer` (this server's
// /signaling) and `insights: false`, and the development endpoints under /quickstart/ (a
// token for anyone, a recording switch) that only `parlour serve --dev` answers.
(function () {
  'use strict';

  const Video = window.Twilio && window.Twilio.Video;
  const $ = (id) => document.getElementById(id);

  // -- icons (drawn here; stroked 24×24 paths) --------------------------------------------
  const ICONS = {
    mic: '<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3"/>',
    micOff: '<rect x="9" y="3" width="6" height="11" rx="3"/>'
      + '<path d="M5 11a7 7 0 0 0 14 0M12 18v3M4 4l16 16"/>',
    cam: '<rect x="3" y="6" width="12" height="12" rx="2.5"/><path d="M15 10.5l6-3.5v10l-6-3.5z"/>',
    camOff: '<rect x="3" y="6" width="12" height="12" rx="2.5"/>'
      + '<path d="M15 10.5l6-3.5v10l-6-3.5zM3 3l18 18"/>',
    screen: '<rect x="3" y="4" width="18" height="12" rx="2"/><path d="M8 20h8M12 16v4M9 10l3-3 3 3M12 7v6"/>',
    rec: '<circle cx="12" cy="12" r="8.5"/><circle cx="12" cy="12" r="4" fill="currentColor"/>',
    chat: '<path d="M4 5.5A1.5 1.5 0 0 1 5.5 4h13A1.5 1.5 0 0 1 20 5.5v9a1.5 1.5 0 0 1-1.5 1.5H9l-5 4z"/>',
    leave: '<path d="M10 17l-5-5 5-5M5 12h11M14 4h4a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-4"/>',
    close: '<path d="M6 6l12 12M18 6L6 18"/>',
    speaker: '<rect x="3" y="3" width="18" height="12" rx="2"/>'
      + '<rect x="3" y="17.5" width="5" height="3.5" rx="1"/><rect x="9.5" y="17.5" width="5" height="3.5" rx="1"/>'
      + '<rect x="16" y="17.5" width="5" height="3.5" rx="1"/>',
    sliders: '<path d="M4 7h9M17 7h3M4 17h3M11 17h9"/><circle cx="15" cy="7" r="2"/>'
      + '<circle cx="9" cy="17" r="2"/>',
    grid: '<rect x="3" y="3" width="8" height="8" rx="1.5"/><rect x="13" y="3" width="8" height="8" rx="1.5"/>'
      + '<rect x="3" y="13" width="8" height="8" rx="1.5"/><rect x="13" y="13" width="8" height="8" rx="1.5"/>',
  };
  function svg(name) {
    return '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" '
      + 'stroke="currentColor" stroke-width="1.9" stroke-linecap="round" '
      + 'stroke-linejoin="round">' + ICONS[name] + '</svg>';
  }
  function setIcon(el, name) {
    if (el.dataset.icon !== name || !el.firstChild) {
      el.dataset.icon = name;
      el.innerHTML = svg(name);
    }
  }
  function drawIcons(root) {
    root.querySelectorAll('.icon[data-icon]').forEach((el) => { el.innerHTML = svg(el.dataset.icon); });
  }

  // -- state ----------------------------------------------------------------------------------
  const state = {
    room: null,          // the connected Room
    joining: false,      // a connect() in flight: a second Join does nothing
    token: null,         // the Access Token the room was joined with (the recording switch)
    identity: '',
    roomName: '',
    micOn: true,
    camOn: true,
    preview: { audio: null, video: null },
    dataTrack: null,
    screenTrack: null,
    view: 'grid',        // or 'speaker'
    dominant: null,      // SID of the dominant speaker
    tiles: new Map(),    // key → tile element (participant SID, or SID + ':screen:' + track)
    unread: 0,
    leaving: false,
    recording: false,
    meter: null,
  };
  window.quickstart = state; // for tests and the browser console (state.relayout() too)

  // -- words ----------------------------------------------------------------------------------
  const PLAIN = {
    20101: 'The access token is not valid.',
    20103: 'The access token was signed with a key this server does not know.',
    20104: 'The access token has expired. Get a new one and join again.',
    20105: 'The access token is not valid yet. Check the clock of the machine that made it.',
    20106: 'The access token does not allow joining video rooms.',
    20107: 'The access token signature does not match.',
    53000: 'Could not reach the meeting server. Check your network and try again.',
    53001: 'The connection to the meeting server was lost.',
    53002: 'The meeting server did not answer in time.',
    53006: 'The meeting server is busy. Try again in a moment.',
    53105: 'The meeting is full.',
    53106: 'There is no meeting with this name.',
    53118: 'The meeting has ended.',
    53204: 'You were removed from the meeting.',
    53205: 'You joined this meeting with the same name somewhere else (another tab or device).',
    53405: 'Your audio and video could not connect. A firewall may be blocking it.',
    53407: 'Your audio and video connection could not be secured.',
  };
  function explain(error) {
    if (!error) return '';
    if (PLAIN[error.code]) return PLAIN[error.code];
    switch (error.name) {
      case 'NotAllowedError':
        return 'The browser was not allowed to use your camera or microphone. '
          + 'Allow them in the address bar and try again.';
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'That camera or microphone could not be found.';
      case 'NotReadableError':
        return 'Your camera or microphone is in use by another application.';
      default:
        return (error.message || String(error)) + (error.code ? ` (error ${error.code})` : '');
    }
  }

  function announce(text) {
    const el = $('announcer');
    el.textContent = '';
    window.setTimeout(() => { el.textContent = text; }, 30);
  }

  function setStatus(text, isError) {
    const el = $('status');
    el.textContent = text || '';
    el.classList.toggle('error', !!isError);
  }

  let bannerTimer = 0;
  function banner(text, kind, ms) {
    const el = $('banner');
    window.clearTimeout(bannerTimer);
    el.textContent = text || '';
    el.className = 'banner' + (kind ? ' ' + kind : '');
    el.hidden = !text;
    if (text && ms) bannerTimer = window.setTimeout(() => { el.hidden = true; }, ms);
  }

  function show(screen) {
    for (const id of ['prejoin', 'call', 'left']) $(id).hidden = id !== screen;
  }

  function initials(name) {
    const words = String(name || '?').trim().split(/[\s._@-]+/).filter(Boolean);
    const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2);
    return letters.toUpperCase();
  }

  function colour(name) {
    let hash = 0;
    for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `hsl(${hash % 360} 55% 48%)`;
  }

  // -- pre-join: preview and devices ------------------------------------------------------
  function selectedId(select) {
    return select.value || undefined;
  }

  async function startPreviewVideo() {
    stopTrack(state.preview.video);
    state.preview.video = null;
    const tile = $('preview');
    tile.querySelectorAll('video').forEach((el) => el.remove());
    if (!state.camOn) { tile.classList.add('video-off'); return; }
    const deviceId = selectedId($('camera-select'));
    try {
      const track = await Video.createLocalVideoTrack(Object.assign(
        { width: 1280, height: 720, frameRate: 24, name: 'camera' },
        deviceId ? { deviceId: { exact: deviceId } } : {}));
      state.preview.video = track;
      const el = track.attach();
      el.classList.add('camera');
      el.muted = true;
      el.playsInline = true;
      tile.insertBefore(el, tile.firstChild);
      tile.classList.remove('video-off');
      setStatus('');
    } catch (error) {
      tile.classList.add('video-off');
      setStatus('Camera: ' + explain(error), true);
    }
  }

  async function startPreviewAudio() {
    stopTrack(state.preview.audio);
    state.preview.audio = null;
    stopMeter();
    const deviceId = selectedId($('mic-select'));
    try {
      const track = await Video.createLocalAudioTrack(Object.assign(
        { name: 'microphone' }, deviceId ? { deviceId: { exact: deviceId } } : {}));
      if (!state.micOn) track.disable();
      state.preview.audio = track;
      startMeter(track);
    } catch (error) {
      setStatus('Microphone: ' + explain(error), true);
    }
  }

  function stopTrack(track) {
    if (!track) return;
    if (track.detach) track.detach().forEach((el) => el.remove());
    track.stop();
  }

  // A level meter under the preview, so people see their microphone works.
  function startMeter(track) {
    const AudioContext = window.AudioContext || window.webkitAudioContext;
    if (!AudioContext) return;
    try {
      const context = new AudioContext();
      const source = context.createMediaStreamSource(new MediaStream([track.mediaStreamTrack]));
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      const data = new Uint8Array(analyser.fftSize);
      const bar = $('preview-meter');
      const tick = () => {
        if (!state.meter) return;
        analyser.getByteTimeDomainData(data);
        let peak = 0;
        for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
        bar.style.width = (state.micOn ? Math.min(100, peak * 1.6) : 0) + '%';
        state.meter.frame = window.requestAnimationFrame(tick);
      };
      state.meter = { context, frame: 0 };
      // Browsers start audio only after a gesture: the first click or key wakes the meter.
      const wake = () => { if (context.state === 'suspended') context.resume(); };
      document.addEventListener('pointerdown', wake, { once: true });
      document.addEventListener('keydown', wake, { once: true });
      tick();
    } catch (error) {
      state.meter = null;
    }
  }

  function stopMeter() {
    if (!state.meter) return;
    window.cancelAnimationFrame(state.meter.frame);
    state.meter.context.close();
    state.meter = null;
    $('preview-meter').style.width = '0';
  }

  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    fill($('camera-select'), devices.filter((d) => d.kind === 'videoinput'), 'Camera');
    fill($('mic-select'), devices.filter((d) => d.kind === 'audioinput'), 'Microphone');
  }

  function fill(select, devices, what) {
    const chosen = select.value;
    select.textContent = '';
    if (!devices.length) {
      select.add(new Option(`No ${what.toLowerCase()} found`, ''));
      select.disabled = true;
      return;
    }
    select.disabled = false;
    devices.forEach((d, i) => select.add(new Option(d.label || `${what} ${i + 1}`, d.deviceId)));
    if (devices.some((d) => d.deviceId === chosen)) select.value = chosen;
  }

  function setToggle(button, on, what) {
    button.setAttribute('aria-pressed', String(on));
    button.setAttribute('aria-label', `${what} ${on ? 'on' : 'off'}`);
  }

  function updatePreviewToggles() {
    setToggle($('preview-mic'), state.micOn, 'Microphone');
    setToggle($('preview-camera'), state.camOn, 'Camera');
    setIcon($('preview-mic').querySelector('.icon'), state.micOn ? 'mic' : 'micOff');
    setIcon($('preview-camera').querySelector('.icon'), state.camOn ? 'cam' : 'camOff');
  }

  function updatePreviewName() {
    const name = $('identity').value.trim();
    $('preview-name').textContent = name || 'You';
    $('preview-initials').textContent = initials(name || '?');
    $('preview-initials').style.setProperty('--avatar', colour(name || '?'));
  }

  async function startPreview() {
    updatePreviewToggles();
    await Promise.all([startPreviewVideo(), startPreviewAudio()]);
    await listDevices(); // labels are known once the page may use the devices
  }

  function stopPreview() {
    stopMeter();
    // The tracks go on into the call; only the preview's own <video> goes.
    if (state.preview.video) state.preview.video.detach($('preview').querySelector('video'));
    $('preview').querySelectorAll('video').forEach((el) => el.remove());
  }

  // -- joining --------------------------------------------------------------------------------
  function wsServer() {
    return location.origin.replace(/^http/, 'ws') + '/signaling';
  }

  async function fetchToken(identity, room) {
    const query = new URLSearchParams({ identity, room });
    const response = await fetch('/quickstart/token?' + query);
    if (response.status === 404) {
      $('token-details').open = true;
      throw new Error('This server does not hand out tokens (start it with '
        + '`parlour serve --dev`), so paste an Access Token from `parlour token` below.');
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || 'Could not get an access token.');
    return body.token;
  }

  async function join(event) {
    if (event) event.preventDefault();
    if (state.joining || state.room) return; // one session per page, however often Join is hit
    const identity = $('identity').value.trim();
    const roomName = $('room').value.trim();
    const ownToken = $('token').value.trim();
    if (!ownToken && !identity) {
      setStatus('Enter your name to join.', true);
      $('identity').focus();
      return;
    }
    if (!roomName) {
      setStatus('Enter the name of the room.', true);
      $('room').focus();
      return;
    }
    state.joining = true;
    $('join').disabled = true;
    setStatus('Joining…');
    try {
      const token = ownToken || await fetchToken(identity, roomName);
      if (state.camOn && !state.preview.video) await startPreviewVideo();
      if (!state.preview.audio) await startPreviewAudio();
      state.dataTrack = new Video.LocalDataTrack({ name: 'chat' });
      const tracks = [state.preview.audio, state.preview.video, state.dataTrack].filter(Boolean);
      const room = await Video.connect(token, {
        name: roomName,
        wsServer: wsServer(),
        insights: false,
        tracks,
        dominantSpeaker: true,
        networkQuality: { local: 1, remote: 1 },
      });
      state.token = token;
      state.identity = room.localParticipant.identity;
      state.roomName = roomName;
      try { localStorage.setItem('parlour-meet-name', identity); } catch (e) { /* private mode */ }
      const url = new URL(location.href);
      url.searchParams.set('room', roomName);
      history.replaceState(null, '', url);
      enterCall(room);
      setStatus('');
    } catch (error) {
      state.dataTrack = null;
      setStatus('Could not join: ' + explain(error), true);
      announce('Could not join. ' + explain(error));
    } finally {
      state.joining = false;
      $('join').disabled = false;
    }
  }

  // -- the call ---------------------------------------------------------------------------
  function enterCall(room) {
    state.room = room;
    state.leaving = false;
    state.unread = 0;
    state.dominant = room.dominantSpeaker ? room.dominantSpeaker.sid : null;
    stopPreview();
    $('messages').textContent = '';
    emptyChat();
    $('room-name').textContent = room.name;
    document.title = `${room.name} · Parlour Meet`;
    show('call');
    banner('');

    const local = room.localParticipant;
    addParticipant(local, true);
    room.participants.forEach((p) => addParticipant(p, false));

    room.on('participantConnected', (p) => {
      addParticipant(p, false);
      announce(`${p.identity} joined`);
    });
    room.on('participantDisconnected', (p) => {
      removeParticipant(p);
      announce(`${p.identity} left`);
    });
    room.on('dominantSpeakerChanged', (p) => {
      state.dominant = p ? p.sid : null;
      markSpeaker();
      if (state.view === 'speaker') layout();
    });
    room.on('trackMessage', (data, track, participant) => receive(data, participant));
    room.on('participantReconnecting', (p) => { tileOf(p).classList.add('reconnecting'); });
    room.on('participantReconnected', (p) => { tileOf(p).classList.remove('reconnecting'); });
    room.on('reconnecting', () => {
      banner('Your connection was lost. Reconnecting…', '');
      announce('Connection lost. Reconnecting.');
    });
    room.on('reconnected', () => {
      banner('Reconnected.', 'ok', 3000);
      announce('Reconnected.');
    });
    room.on('recordingStarted', () => showRecording(true));
    room.on('recordingStopped', () => showRecording(false));
    room.on('disconnected', (r, error) => leftRoom(error));
    showRecording(room.isRecording);
    updateControls();
    updateCount();
    layout();
    announce(`You joined ${room.name}.`);
  }

  function tileKey(participant) { return participant.sid; }

  function tileOf(participant) {
    return state.tiles.get(tileKey(participant)) || document.createElement('div');
  }

  function makeTile(participant, local, screen) {
    const tile = document.createElement('div');
    tile.className = 'tile' + (local ? ' local' : ' remote') + (screen ? ' screen' : ' video-off');
    tile.dataset.identity = participant.identity;
    tile.dataset.sid = participant.sid;
    tile.setAttribute('role', 'group');
    tile.innerHTML = '<div class="avatar" aria-hidden="true"><span></span></div>'
      + '<div class="bars" data-level="" role="img"><i></i><i></i><i></i><i></i><i></i></div>'
      + '<div class="tile-bar"><span class="icon muted-icon" aria-hidden="true"></span>'
      + '<span class="name"></span></div>'
      + '<div class="status-tag" aria-hidden="true">Reconnecting…</div>';
    const avatar = tile.querySelector('.avatar span');
    avatar.textContent = initials(participant.identity);
    avatar.style.setProperty('--avatar', colour(participant.identity));
    setIcon(tile.querySelector('.muted-icon'), 'micOff');
    const who = participant.identity + (local ? ' (you)' : '');
    tile.querySelector('.name').textContent = screen ? `${who}: screen` : who;
    if (screen) tile.querySelector('.bars').remove();
    $('main-tiles').appendChild(tile);
    return tile;
  }

  function addParticipant(participant, local) {
    if (state.tiles.has(tileKey(participant))) return;
    const tile = makeTile(participant, local, false);
    state.tiles.set(tileKey(participant), tile);
    participant.tracks.forEach((pub) => {
      if (pub.track) attach(pub.track, participant, local);
    });
    const refresh = () => updateTile(participant, local);
    if (!local) {
      participant.on('trackSubscribed', (track) => { attach(track, participant, false); refresh(); });
      participant.on('trackUnsubscribed', (track) => { detach(track, participant); refresh(); });
      for (const name of ['trackEnabled', 'trackDisabled', 'trackPublished', 'trackUnpublished',
        'trackSwitchedOff', 'trackSwitchedOn']) {
        participant.on(name, refresh);
      }
    }
    participant.on('networkQualityLevelChanged', (level) => setBars(tile, level));
    setBars(tile, participant.networkQualityLevel);
    refresh();
    markSpeaker();
    updateCount();
    layout();
  }

  function removeParticipant(participant) {
    for (const [key, tile] of state.tiles) {
      if (tile.dataset.sid === participant.sid) {
        tile.querySelectorAll('video').forEach((el) => el.remove());
        tile.remove();
        state.tiles.delete(key);
      }
    }
    participant.tracks.forEach((pub) => { if (pub.track && pub.track.kind === 'audio') detach(pub.track); });
    updateCount();
    layout();
  }

  function isScreen(track) {
    return track.kind === 'video' && /^screen/.test(track.name);
  }

  function attach(track, participant, local) {
    if (track.kind === 'data') return;
    if (track.kind === 'audio') {
      if (local) return; // never play one's own microphone
      const el = track.attach();
      el.dataset.sid = participant.sid;
      $('audio-sink').appendChild(el);
      return;
    }
    let tile = tileOf(participant);
    if (isScreen(track)) {
      const key = `${participant.sid}:screen:${track.name}`;
      tile = state.tiles.get(key) || makeTile(participant, local, true);
      state.tiles.set(key, tile);
      tile.dataset.track = track.name;
    }
    if (tile.querySelector(`video[data-track-name="${CSS.escape(track.name)}"]`)) return;
    const el = track.attach();
    el.dataset.trackName = track.name;
    if (!isScreen(track)) el.classList.add('camera');
    el.muted = true;
    el.playsInline = true;
    tile.insertBefore(el, tile.firstChild);
    layout();
  }

  function detach(track, participant) {
    if (track.kind === 'data') return;
    if (track.detach) track.detach().forEach((el) => el.remove());
    if (participant && isScreen(track)) {
      const key = `${participant.sid}:screen:${track.name}`;
      const tile = state.tiles.get(key);
      if (tile) { tile.remove(); state.tiles.delete(key); }
      layout();
    }
  }

  // What a tile shows: camera off (avatar), microphone muted, its label for screen readers.
  function updateTile(participant, local) {
    const tile = state.tiles.get(tileKey(participant));
    if (!tile) return;
    const pubs = [...participant.tracks.values()];
    const audio = pubs.filter((p) => p.kind === 'audio');
    const camera = pubs.filter((p) => p.kind === 'video' && !/^screen/.test(p.trackName));
    const audioOn = audio.some((p) => local ? p.track && p.track.isEnabled : p.isTrackEnabled);
    const videoOn = camera.some((p) => local
      ? p.track && p.track.isEnabled
      : p.isTrackEnabled && p.track && !p.track.isSwitchedOff);
    tile.classList.toggle('audio-off', !audioOn);
    tile.classList.toggle('video-off', !videoOn);
    const who = participant.identity + (local ? ' (you)' : '');
    const parts = [who, audioOn ? 'microphone on' : 'microphone muted',
      videoOn ? 'camera on' : 'camera off'];
    if (tile.classList.contains('speaking')) parts.push('speaking');
    tile.setAttribute('aria-label', parts.join(', '));
  }

  function setBars(tile, level) {
    const bars = tile.querySelector('.bars');
    if (!bars) return;
    const known = typeof level === 'number';
    bars.dataset.level = known ? String(level) : '';
    bars.setAttribute('aria-label', known ? `Network quality ${level} of 5` : 'Network quality unknown');
  }

  function markSpeaker() {
    for (const tile of state.tiles.values()) {
      const speaking = !tile.classList.contains('screen') && tile.dataset.sid === state.dominant;
      tile.classList.toggle('speaking', speaking);
    }
  }

  function updateCount() {
    const n = state.room ? state.room.participants.size + 1 : 0;
    $('people-count').textContent = `${n} ${n === 1 ? 'person' : 'people'}`;
  }

  // -- layout: every tile is placed by this function (grid, or one large tile and a strip) --
  const GAP = 10;

  function bestGrid(n, width, height) {
    const wide = width >= height;
    const maxRatio = 16 / 9;
    const minRatio = wide ? 4 / 3 : 3 / 4;
    let best = null;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      let w = (width - GAP * (cols - 1)) / cols;
      let h = (height - GAP * (rows - 1)) / rows;
      if (w <= 0 || h <= 0) continue;
      if (w / h > maxRatio) w = h * maxRatio;
      if (w / h < minRatio) h = w / minRatio;
      const area = w * h;
      if (!best || area > best.area + 1) best = { cols, rows, w, h, area };
    }
    return best || { cols: 1, rows: n, w: width, h: height / n, area: 0 };
  }

  function place(tile, x, y, w, h) {
    tile.classList.remove('overflowed');
    tile.style.left = `${Math.round(x)}px`;
    tile.style.top = `${Math.round(y)}px`;
    tile.style.width = `${Math.round(w)}px`;
    tile.style.height = `${Math.round(h)}px`;
  }

  function gridInto(tiles, x0, y0, width, height) {
    if (!tiles.length) return;
    const g = bestGrid(tiles.length, width, height);
    const blockH = g.rows * g.h + (g.rows - 1) * GAP;
    const top = y0 + (height - blockH) / 2;
    tiles.forEach((tile, i) => {
      const row = Math.floor(i / g.cols);
      const inRow = row === g.rows - 1 ? tiles.length - row * g.cols : g.cols;
      const col = i % g.cols;
      const rowW = inRow * g.w + (inRow - 1) * GAP;
      const left = x0 + (width - rowW) / 2;
      place(tile, left + col * (g.w + GAP), top + row * (g.h + GAP), g.w, g.h);
    });
  }

  function orderedTiles() {
    const all = [...state.tiles.values()];
    const rank = (t) => (t.classList.contains('screen') ? 0 : t.classList.contains('local') ? 2 : 1);
    return all.sort((a, b) => rank(a) - rank(b));
  }

  function featuredTile(tiles) {
    const screen = tiles.find((t) => t.classList.contains('screen'));
    if (screen) return screen;
    if (state.view !== 'speaker' || tiles.length < 2) return null;
    return tiles.find((t) => t.dataset.sid === state.dominant && !t.classList.contains('local'))
      || tiles.find((t) => t.classList.contains('remote'))
      || tiles[0];
  }

  function layout() {
    const box = $('main-tiles');
    const width = box.clientWidth;
    const height = box.clientHeight;
    const more = box.querySelector('.more');
    if (more) more.remove();
    if (!width || !height) return;
    const tiles = orderedTiles();
    const featured = featuredTile(tiles);
    const stage = $('stage');
    stage.classList.toggle('focus', !!featured);
    stage.classList.toggle('grid', !featured);
    tiles.forEach((t) => t.classList.toggle('featured', t === featured));
    if (!featured) {
      gridInto(tiles, 0, 0, width, height);
      return;
    }
    const others = tiles.filter((t) => t !== featured);
    if (!others.length) {
      place(featured, 0, 0, width, height);
      return;
    }
    const side = width >= height * 1.1; // the strip beside the large tile, else below it
    let stripTiles = others;
    let shown;
    if (side) {
      const stripW = Math.max(150, Math.min(260, width * 0.2));
      const tileH = stripW * 9 / 16;
      const fit = Math.max(1, Math.floor((height + GAP) / (tileH + GAP)));
      shown = others.length > fit ? fit - 1 : others.length;
      place(featured, 0, 0, width - stripW - GAP, height);
      const count = shown + (others.length > shown ? 1 : 0);
      const top = (height - (count * tileH + (count - 1) * GAP)) / 2;
      stripTiles.slice(0, shown).forEach((t, i) => place(t, width - stripW, top + i * (tileH + GAP), stripW, tileH));
      if (others.length > shown) addMore(box, others.length - shown, width - stripW, top + shown * (tileH + GAP), stripW, tileH);
    } else {
      const stripH = Math.max(72, Math.min(130, height * 0.2));
      const tileW = stripH * 16 / 9;
      const fit = Math.max(1, Math.floor((width + GAP) / (tileW + GAP)));
      shown = others.length > fit ? fit - 1 : others.length;
      place(featured, 0, 0, width, height - stripH - GAP);
      const count = shown + (others.length > shown ? 1 : 0);
      const left = (width - (count * tileW + (count - 1) * GAP)) / 2;
      stripTiles.slice(0, shown).forEach((t, i) => place(t, left + i * (tileW + GAP), height - stripH, tileW, stripH));
      if (others.length > shown) addMore(box, others.length - shown, left + shown * (tileW + GAP), height - stripH, tileW, stripH);
    }
    stripTiles.slice(shown).forEach((t) => t.classList.add('overflowed'));
  }

  state.relayout = () => layout();

  function addMore(box, count, x, y, w, h) {
    const more = document.createElement('div');
    more.className = 'more';
    more.textContent = `+${count} more`;
    box.appendChild(more);
    place(more, x, y, w, h);
  }

  // -- controls -------------------------------------------------------------------------------
  function localTracks(kind) {
    if (!state.room) return [];
    return [...state.room.localParticipant.tracks.values()]
      .map((pub) => pub.track)
      .filter((t) => t && t.kind === kind && t !== state.screenTrack);
  }

  function setControl(button, pressed, icon, label) {
    button.setAttribute('aria-pressed', String(pressed));
    setIcon(button.querySelector('.icon'), icon);
    button.querySelector('.label').textContent = label;
    button.setAttribute('aria-label', label);
  }

  function updateControls() {
    setControl($('mute'), !state.micOn, state.micOn ? 'mic' : 'micOff', state.micOn ? 'Mute' : 'Unmute');
    setControl($('camera'), !state.camOn, state.camOn ? 'cam' : 'camOff',
      state.camOn ? 'Stop camera' : 'Start camera');
    setControl($('share'), !!state.screenTrack, 'screen', state.screenTrack ? 'Stop sharing' : 'Share screen');
    setControl($('record'), state.recording, 'rec', state.recording ? 'Stop recording' : 'Record');
    const chatOpen = !$('chat').hidden;
    $('chat-toggle').setAttribute('aria-pressed', String(chatOpen));
    $('chat-toggle').setAttribute('aria-expanded', String(chatOpen));
    $('chat-toggle').setAttribute('aria-label', state.unread
      ? `Chat, ${state.unread} unread` : 'Chat');
    const speaker = state.view === 'speaker';
    $('layout').setAttribute('aria-pressed', String(speaker));
    setIcon($('layout').querySelector('.icon'), speaker ? 'grid' : 'speaker');
    $('layout').querySelector('.label').textContent = speaker ? 'Grid view' : 'Speaker view';
    $('layout').setAttribute('aria-label', speaker ? 'Grid view' : 'Speaker view');
    if (!('getDisplayMedia' in (navigator.mediaDevices || {}))) $('share').hidden = true;
  }

  function toggleMic() {
    state.micOn = !state.micOn;
    localTracks('audio').forEach((t) => (state.micOn ? t.enable() : t.disable()));
    if (state.room) updateTile(state.room.localParticipant, true);
    updateControls();
    announce(state.micOn ? 'Microphone on' : 'Microphone muted');
  }

  async function toggleCamera() {
    state.camOn = !state.camOn;
    const tracks = localTracks('video');
    if (state.room && state.camOn && !tracks.length) {
      // Joined without a camera (or it failed): publish one now.
      try {
        const track = await Video.createLocalVideoTrack({ width: 1280, height: 720, frameRate: 24, name: 'camera' });
        await state.room.localParticipant.publishTrack(track);
        state.preview.video = track;
        attach(track, state.room.localParticipant, true);
      } catch (error) {
        state.camOn = false;
        banner('Camera: ' + explain(error), 'error', 6000);
      }
    }
    tracks.forEach((t) => (state.camOn ? t.enable() : t.disable()));
    if (state.room) updateTile(state.room.localParticipant, true);
    updateControls();
    announce(state.camOn ? 'Camera on' : 'Camera off');
  }

  async function toggleShare() {
    const room = state.room;
    if (!room) return;
    if (state.screenTrack) {
      stopSharing();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = new Video.LocalVideoTrack(stream.getVideoTracks()[0], { name: 'screen' });
      await room.localParticipant.publishTrack(track, { priority: 'high' });
      state.screenTrack = track;
      attach(track, room.localParticipant, true);
      track.mediaStreamTrack.addEventListener('ended', () => { if (state.screenTrack === track) stopSharing(); });
      announce('You are sharing your screen');
    } catch (error) {
      if (error && error.name !== 'NotAllowedError') banner('Could not share your screen: ' + explain(error), 'error', 6000);
    }
    updateControls();
  }

  function stopSharing() {
    const track = state.screenTrack;
    if (!track) return;
    state.screenTrack = null;
    try {
      if (state.room) state.room.localParticipant.unpublishTrack(track);
    } catch (error) { /* the room is gone already: nothing to unpublish from */ }
    detach(track, state.room ? state.room.localParticipant : null);
    track.stop();
    updateControls();
    layout();
  }

  function showRecording(on) {
    const changed = !!on !== !$('rec-pill').hidden;
    state.recording = !!on;
    $('rec-pill').hidden = !on;
    updateControls();
    if (changed && state.room) announce(on ? 'This meeting is being recorded' : 'Recording stopped');
  }

  async function toggleRecording() {
    const room = state.room;
    if (!room) return;
    const button = $('record');
    button.disabled = true;
    try {
      const response = await fetch('/quickstart/recording', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${state.token}` },
        body: JSON.stringify({ room: room.sid, record: !state.recording }),
      });
      if (response.status === 404) {
        throw new Error('The recording switch needs the server in development mode '
          + '(`parlour serve --dev`); otherwise use the REST API (RecordingRules).');
      }
      const body = await response.json();
      if (!response.ok) throw new Error(body.message || 'The server refused.');
      const recording = body.rules.some((rule) => rule.type === 'include');
      state.recording = recording;
      updateControls();
    } catch (error) {
      banner('Recording: ' + explain(error), 'error', 8000);
    } finally {
      button.disabled = false;
    }
  }

  // -- devices during the call -----------------------------------------------------------
  function currentDevice(kind) {
    const [track] = localTracks(kind);
    return track ? track.mediaStreamTrack.getSettings().deviceId : undefined;
  }

  async function openSettings() {
    $('settings-status').textContent = '';
    if (navigator.mediaDevices && navigator.mediaDevices.enumerateDevices) {
      const devices = await navigator.mediaDevices.enumerateDevices();
      fill($('call-camera'), devices.filter((d) => d.kind === 'videoinput'), 'Camera');
      fill($('call-mic'), devices.filter((d) => d.kind === 'audioinput'), 'Microphone');
      for (const [select, kind] of [[$('call-camera'), 'video'], [$('call-mic'), 'audio']]) {
        const id = currentDevice(kind);
        if (id && [...select.options].some((o) => o.value === id)) select.value = id;
      }
    }
    $('settings-dialog').showModal();
  }

  // Switch a published track to another device: the SDK restarts it in place.
  async function switchDevice(kind, select) {
    const [track] = localTracks(kind);
    if (!track || !select.value) return;
    try {
      await track.restart({ deviceId: { exact: select.value } });
      if (kind === 'video') $('camera-select').value = select.value;
      else $('mic-select').value = select.value;
      $('settings-status').textContent = `${kind === 'video' ? 'Camera' : 'Microphone'} changed.`;
    } catch (error) {
      $('settings-status').textContent = explain(error);
    }
  }

  function setView(view) {
    state.view = view;
    updateControls();
    layout();
    announce(view === 'speaker' ? 'Speaker view' : 'Grid view');
  }

  // -- chat over the data track -----------------------------------------------------------
  function emptyChat() {
    if ($('messages').children.length) return;
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'Messages are seen by everyone in the meeting now, and are not kept.';
    $('messages').appendChild(li);
  }

  function addMessage(from, text, mine, at) {
    const list = $('messages');
    const empty = list.querySelector('.empty');
    if (empty) empty.remove();
    const li = document.createElement('li');
    li.className = mine ? 'mine' : 'theirs';
    const head = document.createElement('span');
    head.className = 'from';
    head.textContent = mine ? 'You' : from;
    const time = document.createElement('time');
    const when = new Date(at || Date.now());
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    head.appendChild(time);
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    li.append(head, body);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function receive(data, participant) {
    let message;
    try { message = JSON.parse(data); } catch (e) { return; }
    if (!message || message.type !== 'chat' || typeof message.text !== 'string') return;
    const text = message.text.slice(0, 2000);
    addMessage(participant.identity, text, false, Date.now());
    if ($('chat').hidden) {
      state.unread += 1;
      $('unread').textContent = String(state.unread);
      $('unread').hidden = false;
      updateControls();
      announce(`Message from ${participant.identity}: ${text}`);
    }
  }

  function send(event) {
    event.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || !state.dataTrack || !state.room) return;
    state.dataTrack.send(JSON.stringify({ type: 'chat', text: text.slice(0, 2000), at: Date.now() }));
    addMessage(state.identity, text, true, Date.now());
    input.value = '';
    input.focus();
  }

  function setChat(open) {
    $('chat').hidden = !open;
    if (open) {
      state.unread = 0;
      $('unread').hidden = true;
      $('chat-input').focus();
    } else {
      $('chat-toggle').focus();
    }
    updateControls();
    layout();
  }

  // -- leaving ----------------------------------------------------------------------------------
  function leave() {
    if (!state.room) return;
    state.leaving = true;
    state.room.disconnect();
  }

  function leftRoom(error) {
    const room = state.room;
    if (!room) return;
    stopSharing();
    state.room = null;
    state.dataTrack = null;
    room.localParticipant.tracks.forEach((pub) => { if (pub.track && pub.track.stop) pub.track.stop(); });
    state.preview = { audio: null, video: null };
    for (const tile of state.tiles.values()) tile.remove();
    state.tiles.clear();
    $('audio-sink').textContent = '';
    $('chat').hidden = true;
    showRecording(false);
    banner('');
    document.title = 'Parlour Meet';
    if (error && !state.leaving) {
      $('left-title').textContent = 'You were disconnected';
      $('left-detail').textContent = explain(error);
    } else {
      $('left-title').textContent = 'You left the meeting';
      $('left-detail').textContent = `You left ${room.name}. Rejoin whenever you like.`;
    }
    state.leaving = false;
    show('left');
    announce($('left-title').textContent + '. ' + $('left-detail').textContent);
    $('rejoin').focus();
  }

  async function backToStart() {
    show('prejoin');
    setStatus('');
    await startPreview();
    $('identity').focus();
  }

  async function rejoin() {
    show('prejoin');
    setStatus('Joining…');
    await startPreview();
    await join();
  }

  // -- wiring -----------------------------------------------------------------------------
  function init() {
    drawIcons(document);
    const audioSink = document.createElement('div');
    audioSink.id = 'audio-sink';
    audioSink.hidden = true;
    document.body.appendChild(audioSink);
    if (!Video) {
      setStatus('twilio-video is not installed on this server (run scripts/install).', true);
      $('join').disabled = true;
      return;
    }
    const params = new URLSearchParams(location.search);
    if (params.get('room')) $('room').value = params.get('room').slice(0, 128);
    try {
      const name = localStorage.getItem('parlour-meet-name');
      if (name && !$('identity').value) $('identity').value = name;
    } catch (e) { /* private mode */ }
    updatePreviewName();

    $('join-form').addEventListener('submit', join);
    $('identity').addEventListener('input', updatePreviewName);
    $('preview-mic').addEventListener('click', () => {
      state.micOn = !state.micOn;
      if (state.preview.audio) (state.micOn ? state.preview.audio.enable() : state.preview.audio.disable());
      updatePreviewToggles();
    });
    $('preview-camera').addEventListener('click', () => {
      state.camOn = !state.camOn;
      updatePreviewToggles();
      startPreviewVideo();
    });
    $('camera-select').addEventListener('change', startPreviewVideo);
    $('mic-select').addEventListener('change', startPreviewAudio);
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', listDevices);
    }

    $('mute').addEventListener('click', toggleMic);
    $('camera').addEventListener('click', toggleCamera);
    $('share').addEventListener('click', toggleShare);
    $('record').addEventListener('click', toggleRecording);
    $('chat-toggle').addEventListener('click', () => setChat($('chat').hidden));
    $('chat-close').addEventListener('click', () => setChat(false));
    $('chat-form').addEventListener('submit', send);
    $('layout').addEventListener('click', () => setView(state.view === 'speaker' ? 'grid' : 'speaker'));
    $('leave').addEventListener('click', leave);
    $('settings').addEventListener('click', openSettings);
    $('call-camera').addEventListener('change', () => switchDevice('video', $('call-camera')));
    $('call-mic').addEventListener('change', () => switchDevice('audio', $('call-mic')));
    $('settings-dialog').addEventListener('close', () => $('settings').focus());
    $('rejoin').addEventListener('click', rejoin);
    $('home').addEventListener('click', backToStart);
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !$('chat').hidden) setChat(false);
    });
    if (window.ResizeObserver) new ResizeObserver(() => layout()).observe($('main-tiles'));
    window.addEventListener('resize', layout);
    window.addEventListener('beforeunload', () => { if (state.room) state.room.disconnect(); });
    startPreview();
  }

  init();
})();
