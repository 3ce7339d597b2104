// Test instrumentation added to Parlour's /sdk/ page (which has already loaded the unmodified
// twilio-video bundle from Parlour). Nothing here changes the SDK: it records what the SDK
// reports so that the Python tests can read it back.

// Keep every RTCPeerConnection the SDK creates (the SDK looks the constructor up when it
// connects), so inbound-rtp stats (framesDecoded) can be read per remote track. A factory,
// not a subclass: the SDK proxies the properties of `RTCPeerConnection.prototype`, which must
// stay the native one.
window.peerConnections = [];
(function () {
  const Native = window.RTCPeerConnection;
  function RTCPeerConnection(...args) {
    const pc = new Native(...args);
    window.peerConnections.push(pc);
    return pc;
  }
  RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(RTCPeerConnection, Native);
  window.RTCPeerConnection = RTCPeerConnection;
})();

// What the SDK reports, for the test to read: window.events, window.room.
window.events = [];
window.room = null;
window.remoteTracks = {};  // track SID -> RemoteTrack

function record(name, detail) {
  window.events.push(Object.assign({ name, at: Date.now() }, detail || {}));
}

function describe(participant) {
  return { participant: participant.identity, participantSid: participant.sid };
}

// A subscribed remote track: kept by SID, video attached to a <video> the tests can read.
function onTrackSubscribed(track, publication, participant) {
  window.remoteTracks[publication.trackSid] = track;
  if (track.kind === 'video') {
    const detail = Object.assign(describe(participant), { trackSid: publication.trackSid });
    track.on('switchedOff', () => record('switchedOff', detail));
    track.on('switchedOn', () => record('switchedOn', detail));
  }
  if (track.kind === 'video') {
    const el = track.attach();
    el.dataset.trackSid = publication.trackSid;
    el.muted = true;
    document.body.appendChild(el);
  }
  record('trackSubscribed', Object.assign(describe(participant), {
    kind: track.kind,
    trackSid: publication.trackSid,
    trackName: publication.trackName,
  }));
}

function watchQuality(participant, local) {
  participant.on('networkQualityLevelChanged', (level, stats) => record('networkQuality',
    Object.assign(describe(participant), { local, level, hasStats: !!stats })));
}

function watchRoom(room) {
  watchQuality(room.localParticipant, true);
  room.participants.forEach((p) => watchQuality(p, false));
  room.on('participantConnected', (p) => watchQuality(p, false));
  room.on('participantConnected', (p) => record('participantConnected', describe(p)));
  room.on('participantDisconnected', (p) => record('participantDisconnected', describe(p)));
  room.on('participantReconnecting', (p) => record('participantReconnecting', describe(p)));
  room.on('participantReconnected', (p) => record('participantReconnected', describe(p)));
  room.on('trackPublished', (pub, p) => record('trackPublished',
    Object.assign(describe(p), { kind: pub.kind, trackSid: pub.trackSid })));
  room.on('trackUnpublished', (pub, p) => record('trackUnpublished',
    Object.assign(describe(p), { kind: pub.kind, trackSid: pub.trackSid })));
  room.on('trackSubscribed', onTrackSubscribed);
  room.on('trackUnsubscribed', (track, publication, participant) => {
    delete window.remoteTracks[publication.trackSid];
    track.detach().forEach((el) => el.remove());
    record('trackUnsubscribed', Object.assign(describe(participant), {
      kind: track.kind, trackSid: publication.trackSid, trackName: publication.trackName,
    }));
  });
  room.on('trackEnabled', (pub, p) => record('trackEnabled',
    Object.assign(describe(p), { kind: pub.kind, trackSid: pub.trackSid })));
  room.on('trackDisabled', (pub, p) => record('trackDisabled',
    Object.assign(describe(p), { kind: pub.kind, trackSid: pub.trackSid })));
  room.on('trackSubscriptionFailed', (error, publication, participant) => record(
    'trackSubscriptionFailed',
    Object.assign(describe(participant), { trackSid: publication.trackSid, code: error.code })));
  room.on('trackMessage', (data, track, participant) => record('trackMessage',
    Object.assign(describe(participant), { data: String(data) })));
  room.on('reconnecting', (error) => record('reconnecting', { code: error && error.code }));
  room.on('reconnected', () => record('reconnected'));
  room.on('dominantSpeakerChanged', (p) => record('dominantSpeakerChanged',
    p ? describe(p) : { participant: null }));
  room.on('recordingStarted', () => record('recordingStarted'));
  room.on('recordingStopped', () => record('recordingStopped'));
  room.on('transcription', (message) => record('transcription', message));
  room.on('disconnected', (r, error) => record('disconnected', {
    code: error ? error.code : null, message: error ? error.message : null,
  }));
}

// Join a room with the SDK; resolves with {sid, participantSid} or {error, code}.
window.join = async function (token, options) {
  const Video = window.Twilio.Video;
  // At debug level the SDK logs every signaling frame (`Incoming:`/`Outgoing:`) to the console.
  Video.Logger.getLogger('twilio-video').setLevel(options.debug ? 'debug' : 'warn');
  delete options.debug;
  try {
    const room = await Video.connect(token, options);
    window.room = room;
    // Whatever happened before these listeners existed is recorded as if it had been seen.
    room.participants.forEach((p) => {
      record('participantConnected', describe(p));
      p.tracks.forEach((pub) => pub.track && onTrackSubscribed(pub.track, pub, p));
    });
    watchRoom(room);
    record('connected', { room: room.name, roomSid: room.sid, isRecording: room.isRecording });
    return { sid: room.sid, participantSid: room.localParticipant.sid };
  } catch (error) {
    record('connectFailed', { code: error.code, message: error.message });
    return { error: error.message, code: error.code };
  }
};

// inbound-rtp video stats of the peer connections, keyed by the receiving track's id.
window.inboundVideo = async function () {
  const out = {};
  for (const pc of window.peerConnections) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out[s.trackIdentifier] = {
          framesDecoded: s.framesDecoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
          packetsReceived: s.packetsReceived || 0,
          keyFramesDecoded: s.keyFramesDecoded || 0,
        };
      }
    });
  }
  return out;
};

// What the page plays for a subscribed video track SID.
window.videoState = async function (trackSid) {
  const track = window.remoteTracks[trackSid];
  const el = document.querySelector(`video[data-track-sid="${trackSid}"]`);
  if (!track || !el) return null;
  const inbound = (await window.inboundVideo())[track.mediaStreamTrack.id] || null;
  return {
    videoWidth: el.videoWidth,
    videoHeight: el.videoHeight,
    paused: el.paused,
    readyState: el.readyState,
    framesDecoded: inbound ? inbound.framesDecoded : 0,
    inbound,
  };
};

// -- Actions the tests drive -------------------------------------------------------------
window.localTracks = {};  // name -> LocalTrack published by the tests

function localTrack(nameOrKind) {
  if (window.localTracks[nameOrKind]) return window.localTracks[nameOrKind];
  for (const pub of window.room.localParticipant.tracks.values()) {
    if (pub.trackName === nameOrKind || pub.kind === nameOrKind) return pub.track;
  }
  throw new Error(`no local track ${nameOrKind}`);
}

// Publish a LocalDataTrack called `name` (ordered, reliable by default).
window.publishData = async function (name) {
  const track = new window.Twilio.Video.LocalDataTrack({ name });
  window.localTracks[name] = track;
  const pub = await window.room.localParticipant.publishTrack(track);
  return pub.trackSid;
};

window.sendData = function (name, messages) {
  const track = localTrack(name);
  messages.forEach((m) => track.send(m));
};

// A second video track from an animated canvas (what a screen share looks like to the SFU).
window.publishCanvas = async function (name) {
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext('2d');
  let n = 0;
  window.canvasTimer = setInterval(() => {
    n += 1;
    ctx.fillStyle = `hsl(${(n * 7) % 360}, 80%, 50%)`;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#fff';
    ctx.fillText(String(n), 10 + (n % 200), 120);
  }, 33);
  const stream = canvas.captureStream(30);
  const track = new window.Twilio.Video.LocalVideoTrack(stream.getVideoTracks()[0], { name });
  window.localTracks[name] = track;
  const pub = await window.room.localParticipant.publishTrack(track);
  return pub.trackSid;
};

// Firefox only: publish a capture of this tab (`getUserMedia` with `mediaSource: 'browser'`,
// behind `media.getusermedia.browser.enabled`): the display capture headless Firefox has, since
// its `getDisplayMedia` finds no screen or window there. Returns the SID and the capture's
// settings (its size is the tab's).
window.publishTab = async function (name) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { mediaSource: 'browser' } });
  const media = stream.getVideoTracks()[0];
  const track = new window.Twilio.Video.LocalVideoTrack(media, { name });
  window.localTracks[name] = track;
  const pub = await window.room.localParticipant.publishTrack(track);
  return { trackSid: pub.trackSid, settings: media.getSettings() };
};

// Publish a fresh camera track called `name`.
window.publishCamera = async function (name) {
  const track = await window.Twilio.Video.createLocalVideoTrack({ name, width: 640, height: 480 });
  window.localTracks[name] = track;
  const pub = await window.room.localParticipant.publishTrack(track);
  return pub.trackSid;
};

window.unpublish = function (nameOrKind) {
  const track = localTrack(nameOrKind);
  window.room.localParticipant.unpublishTrack(track);
  track.stop();
  delete window.localTracks[nameOrKind];
};

window.setEnabled = function (nameOrKind, enabled) {
  const track = localTrack(nameOrKind);
  if (enabled) track.enable(); else track.disable();
};
