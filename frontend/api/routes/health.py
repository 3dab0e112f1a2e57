from fastapi import APIRouter

from frontend.schemas import Message

router = APIRouter(tags=["health"])


@router.get("/health-check")
async def health_check() -> Message:
    """Answers `{"message": "OK"}` while the API process is up (no token needed)."""
    return Message(message="OK")
