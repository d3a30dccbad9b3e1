"""Lessons: review recommendations tracked to the end, lessons in days, and the weekly digest."""

from homicide_assets.defs.lessons.assets import (
    LessonsConfig,
    lessons_assets,
    lessons_in_days,
    recommendations,
)
from homicide_assets.defs.lessons.digest import lessons_weekly_digest_sensor

lessons_sensors = [lessons_weekly_digest_sensor]
lessons_schedules: list = []

__all__ = [
    "LessonsConfig", "lessons_assets", "lessons_in_days", "lessons_schedules", "lessons_sensors",
    "lessons_weekly_digest_sensor", "recommendations",
]
