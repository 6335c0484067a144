"""How a video's style and camera movement reach a backend with no native
parameter for them: as words appended to the prompt. The tables are also what
`POST /v1/videos` accepts for `style_preset` and `camera_movement`."""
from __future__ import annotations

from typing import Protocol


class _Hinted(Protocol):
    prompt: str
    style_preset: str | None
    camera_movement: str | None


# style_preset -> prompt text for backends with no native parameter.
STYLE_PRESETS: dict[str, str] = {
    "cinematic": "cinematic film look, dramatic lighting, shallow depth of field",
    "anime": "anime, cel-shaded 2D animation",
    "photographic": "photorealistic, natural light, as shot on a camera",
    "documentary": "documentary footage, natural and unstaged",
    "3d-render": "3D render, clean CGI look",
    "watercolor": "watercolor painting, soft washes of colour on paper",
}
# camera_movement -> prompt text for backends with no native parameter.
CAMERA_MOVEMENTS: dict[str, str] = {
    "static": "static shot, the camera does not move",
    "pan-left": "slow pan to the left",
    "pan-right": "slow pan to the right",
    "tilt-up": "slow tilt upward",
    "tilt-down": "slow tilt downward",
    "zoom-in": "slow zoom in",
    "zoom-out": "slow zoom out",
    "orbit": "the camera orbits around the subject",
    "dolly-in": "the camera dollies in toward the subject",
    "handheld": "handheld camera with slight natural shake",
}


def prompt_with_hints(req: _Hinted) -> str:
    """The prompt with style and camera written in, for backends with no native parameter."""
    hints = []
    if req.style_preset:
        hints.append(f"Style: {STYLE_PRESETS[req.style_preset]}.")
    if req.camera_movement:
        hints.append(f"Camera: {CAMERA_MOVEMENTS[req.camera_movement]}.")
    return req.prompt if not hints else req.prompt + "\n\n" + " ".join(hints)
