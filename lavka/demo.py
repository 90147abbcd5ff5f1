"""The demo store behind `lavka demo`: a believable Russian shop, the same for the same seed.

Two sites (a tea shop and a kitchenware shop), their staff, a catalog, customers and two years of
orders up to yesterday, with seasonality (New Year and 8 March peaks, a summer lull), repeat and
lapsed customers, payments consistent with each order's status, and about 1% complaints. Customers
and orders go through the bulk import (lavka.orders.bulk), so the demo also exercises that path.

Everything random comes from one `random.Random(seed)`; the only other input is today's date, the
end of the two years.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import multiprocessing
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from itertools import accumulate
from multiprocessing.connection import wait
from typing import Any, NamedTuple, TextIO
from zoneinfo import ZoneInfo

from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone

from lavka.accounts.actions import create_user, save_team, update_user
from lavka.accounts.models import User
from lavka.analytics import actions as analytics_actions
from lavka.analytics import crosssell, metrics
from lavka.automation.defaults import install_default_rules
from lavka.catalog.models import Category, Offer, Product
from lavka.core.actor import Actor
from lavka.core.models import OutboxEvent, Site
from lavka.core.money import ZERO
from lavka.customers.actions import add_note
from lavka.customers.models import Customer, CustomerPhone
from lavka.orders import totals
from lavka.orders.actions import ItemData, PaymentData
from lavka.orders.bulk import CustomerRow, ImportResult, OrderRow, import_customers, import_orders
from lavka.orders.choices import Group
from lavka.orders.defaults import STATUS_GROUPS, STATUSES
from lavka.orders.events import OrderCreated
from lavka.orders.models import Order

DEMO_PASSWORD = "demo-lavka-2026"
DAYS = 730
CHUNK = 50_000  # orders per unit of work: the data must not depend on how many processes load it
ZONE = ZoneInfo("Europe/Moscow")
D = Decimal


class _Pick:
    """A weighted random choice among options whose last element is the weight."""

    def __init__(self, options: list[tuple[Any, ...]]) -> None:
        self.options = [o for o in options if o[-1] > 0]
        self.cumulative = list(accumulate(o[-1] for o in self.options))

    def __call__(self, rng: random.Random) -> Any:
        return self.options[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


# fmt: off
# The data tables stay in columns, as they read best.

# --- staff -----------------------------------------------------------------------------------

TEAMS = ["Продажи: чай", "Продажи: посуда", "Сервис и претензии"]
# username, role, first name, last name, sites, team, share of each site's orders
STAFF: list[tuple[str, str, str, str, tuple[str, ...], str | None, float]] = [
    ("admin", "admin", "Алексей", "Воронцов", (), None, 0),
    ("sveta", "supervisor", "Светлана", "Орлова", ("tea", "kitchen"), None, 0),
    ("anna", "manager", "Анна", "Белова", ("tea",), TEAMS[0], 0.40),
    ("igor", "manager", "Игорь", "Соколов", ("tea",), TEAMS[0], 0.25),
    ("olga", "manager", "Ольга", "Кузнецова", ("kitchen",), TEAMS[1], 0.40),
    ("dmitry", "manager", "Дмитрий", "Волков", ("kitchen",), TEAMS[1], 0.30),
    ("maria", "manager", "Мария", "Лебедева", ("tea", "kitchen"), TEAMS[2], 0.20),
    ("pavel", "manager", "Павел", "Морозов", ("tea", "kitchen"), TEAMS[2], 0.15),
]
WORKING_HOURS = {day: ["09:00", "18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}

# --- sites and catalog -----------------------------------------------------------------------

SITES = [
    {
        "code": "tea", "name": "Чайная лавка", "url": "https://chaynaya-lavka.example",
        "order_suffix": "T",
        "phones": "+7 495 120-45-67", "address": "Москва, ул. Покровка, д. 12",
        "review_url": "https://chaynaya-lavka.example/otzyvy", "ordering": 10,
    },
    {
        "code": "kitchen", "name": "Кухонный двор", "url": "https://kuhonny-dvor.example",
        "order_suffix": "K",
        "phones": "+7 812 309-88-10", "address": "Санкт-Петербург, Лиговский пр-т, д. 50",
        "review_url": "https://kuhonny-dvor.example/otzyvy", "ordering": 20,
    },
]
# Teas: name, price of 100 g. Each is sold as 50 g, 100 g and 250 g.
TEAS = {
    "Зелёный чай": [
        ("Лун Цзин", 690), ("Би Ло Чунь", 750), ("Хуан Шань Мао Фэн", 620), ("Тай Пин Хоу Куй", 1200),
        ("Сенча", 480), ("Гёкуро", 1500), ("Генмайча", 390), ("Матча", 1100),
        ("Моли Хуа Ча (жасминовый)", 520),
        ("Жасминовые жемчужины", 890), ("Ганпаудер", 290), ("Лю Ань Гуа Пянь", 980), ("Чжу Е Цин", 850),
    ],
    "Белый чай": [("Бай Хао Инь Чжэнь", 1600), ("Бай Му Дань", 780), ("Шоу Мэй", 450), ("Гун Мэй", 520),
                  ("Лао Бай Ча (прессованный)", 990)],
    "Улун": [
        ("Те Гуань Инь", 690), ("Да Хун Пао", 950), ("Молочный улун", 560), ("Габа улун", 1100),
        ("Дун Дин", 820), ("Фэн Хуан Дань Цун", 1300), ("Шуй Сянь", 760), ("Жоу Гуй", 880),
        ("Женьшеневый улун", 540), ("Али Шань", 1250), ("Восточная красавица", 1350), ("Шуй Цзинь Гуй", 990),
    ],
    "Пуэр": [
        ("Шу пуэр «Гун Тин»", 620), ("Шэн пуэр «Мэнхай»", 1400), ("Шу пуэр «Менхай 7572»", 690),
        ("Шэн пуэр «Лао Бань Чжан»", 2100), ("Шу пуэр «Сяо То»", 540), ("Пуэр в мандарине", 980),
        ("Шэн пуэр «И У»", 1400), ("Шу пуэр «Лао Ча Тоу»", 760), ("Шу пуэр «Дворцовый»", 890),
    ],
    "Красный и чёрный чай": [
        ("Дянь Хун", 590), ("Цзинь Цзюнь Мэй", 1900), ("Лапсанг Сушонг", 640), ("Ассам TGFOP", 390),
        ("Цейлон OP1", 350), ("Дарджилинг FTGFOP", 880), ("Кения BP1", 290), ("Эрл Грей", 420),
        ("Английский завтрак", 360), ("Юньнань Голд", 720), ("Кимун", 650),
        ("Иван-чай ферментированный", 260), ("Чжэн Шань Сяо Чжун", 980), ("Ассам Хармутти", 520),
    ],
    "Травяной и фруктовый чай": [
        ("Ройбуш", 330), ("Каркаде", 240), ("Мате", 310), ("Гречишный чай Ку Цяо", 280),
        ("Алтайский сбор", 260), ("Мятный сбор", 240), ("Облепиховый сбор", 290), ("Ромашка", 190),
        ("Липовый цвет", 220), ("Чабрец", 210), ("Чёрный чай с бергамотом и васильком", 320),
    ],
}
TEA_WEIGHTS = [(50, D("0.55")), (100, D(1)), (250, D("2.3"))]
# Single-offer goods: category, name, price, weight in grams, manufacturer.
TEA_GOODS = [
    ("Посуда для чая", "Чайник исинский «Си Ши» 200 мл", 4900, 450, "Исин"),
    ("Посуда для чая", "Чайник глиняный 350 мл", 2900, 600, "Исин"),
    ("Посуда для чая", "Чайник стеклянный с ситом 600 мл", 1490, 700, "Kamjove"),
    ("Посуда для чая", "Гайвань фарфоровая 150 мл", 1190, 350, "Цзиндэчжэнь"),
    ("Посуда для чая", "Гайвань «Селадон» 120 мл", 1690, 330, "Лунцюань"),
    ("Посуда для чая", "Пиала фарфоровая 60 мл", 290, 90, "Цзиндэчжэнь"),
    ("Посуда для чая", "Пиала «Тэнмоку» 80 мл", 690, 140, "Цзяньян"),
    ("Посуда для чая", "Чахай стеклянный 250 мл", 590, 300, "Kamjove"),
    ("Посуда для чая", "Чабань бамбуковая", 2490, 1800, "Чайная лавка"),
    ("Посуда для чая", "Чабань из камня", 4990, 3500, "Чайная лавка"),
    ("Посуда для чая", "Набор для чайной церемонии", 6900, 2600, "Чайная лавка"),
    ("Посуда для чая", "Ситечко фарфоровое", 390, 60, "Цзиндэчжэнь"),
    ("Посуда для чая", "Термос для чая 500 мл", 1890, 450, "Thermos"),
    ("Посуда для чая", "Френч-пресс 600 мл", 1290, 650, "Bodum"),
    ("Посуда для чая", "Чайные щипцы", 350, 40, "Чайная лавка"),
    ("Посуда для чая", "Весы для чая до 500 г", 990, 200, "Чайная лавка"),
    ("Посуда для чая", "Банка для хранения чая", 790, 250, "Чайная лавка"),
    ("Посуда для чая", "Глиняная фигурка «Денежная жаба»", 590, 120, "Исин"),
    ("Сладости к чаю", "Мёд липовый 250 г", 490, 300, "Башкирский мёд"),
    ("Сладости к чаю", "Мёд гречишный 250 г", 470, 300, "Башкирский мёд"),
    ("Сладости к чаю", "Варенье из сосновых шишек 240 г", 520, 320, "Сибирские традиции"),
    ("Сладости к чаю", "Урбеч из льна 200 г", 390, 230, "Намажь орех"),
    ("Сладости к чаю", "Пастила яблочная 100 г", 320, 120, "Белёвская пастила"),
    ("Сладости к чаю", "Цукаты имбирные 150 г", 290, 170, "Чайная лавка"),
    ("Сладости к чаю", "Козинаки кунжутные", 190, 110, "Чайная лавка"),
    ("Сладости к чаю", "Конфеты на меду 200 г", 360, 220, "Башкирский мёд"),
]
# Kitchenware: category, name, [(variant, price, weight)], manufacturer.
KITCHEN = [
    ("Сковороды", "Сковорода чугунная", [("20 см", 1490, 1900), ("24 см", 1790, 2500),
                                         ("26 см", 1990, 2900)], "Биол"),
    ("Сковороды", "Сковорода антипригарная Ingenio", [("24 см", 2490, 900), ("28 см", 2990, 1200)], "Tefal"),
    ("Сковороды", "Сковорода с мраморным покрытием", [("24 см", 1690, 1000), ("28 см", 1990, 1300)],
     "Kukmara"),
    ("Сковороды", "Сковорода-гриль чугунная 26 см", [("", 2690, 3100)], "Биол"),
    ("Сковороды", "Сковорода блинная 22 см", [("", 990, 700)], "Нева Металл Посуда"),
    ("Сковороды", "Сотейник с крышкой", [("24 см", 2290, 1600), ("28 см", 2790, 2100)], "Нева Металл Посуда"),
    ("Сковороды", "Вок стальной 30 см", [("", 2190, 1300)], "Fissman"),
    ("Сковороды", "Сковорода для омлета 16 см", [("", 690, 500)], "Нева Металл Посуда"),
    ("Сковороды", "Гриль-пресс чугунный", [("", 1290, 1800)], "Биол"),
    ("Сковороды", "Крышка стеклянная", [("24 см", 490, 500), ("28 см", 590, 650)], "Attribute"),
    ("Кастрюли и ковши", "Кастрюля эмалированная", [("2 л", 1590, 1200), ("3 л", 1890, 1500),
                                                     ("5 л", 2490, 2100)], "СтальЭмаль"),
    ("Кастрюли и ковши", "Кастрюля из нержавеющей стали", [("3 л", 2390, 1400), ("5 л", 2990, 1900)],
     "Rondell"),
    ("Кастрюли и ковши", "Ковш с носиком 1,5 л", [("", 1190, 800)], "Rondell"),
    ("Кастрюли и ковши", "Ковш эмалированный 1 л", [("", 890, 600)], "СтальЭмаль"),
    ("Кастрюли и ковши", "Мантоварка 3 яруса", [("", 2990, 2600)], "Rondell"),
    ("Кастрюли и ковши", "Казан чугунный", [("4,5 л", 3490, 5200), ("8 л", 4990, 7800)], "Камская посуда"),
    ("Кастрюли и ковши", "Скороварка 6 л", [("", 5490, 3200)], "Tefal"),
    ("Кастрюли и ковши", "Набор кастрюль 6 предметов", [("", 6990, 5600)], "Rondell"),
    ("Ножи", "Нож поварской 20 см", [("", 2790, 250)], "Samura"),
    ("Ножи", "Нож сантоку 18 см", [("", 2490, 220)], "Samura"),
    ("Ножи", "Нож для хлеба 23 см", [("", 1390, 200)], "Tramontina"),
    ("Ножи", "Нож филейный 18 см", [("", 1890, 180)], "Samura"),
    ("Ножи", "Магнитный держатель для ножей", [("", 890, 400)], "Attribute"),
    ("Ножи", "Нож овощной 9 см", [("", 590, 80)], "Tramontina"),
    ("Ножи", "Набор ножей на подставке, 5 предметов", [("", 4990, 1900)], "Fissman"),
    ("Ножи", "Точилка для ножей", [("", 890, 300)], "Fissman"),
    ("Ножи", "Ножницы кухонные", [("", 690, 150)], "Attribute"),
    ("Разделочные доски", "Доска разделочная дубовая", [("40×25 см", 1490, 1600), ("50×30 см", 1990, 2300)],
     "Кухонный двор"),
    ("Разделочные доски", "Доска торцевая из бука 35×25 см", [("", 2890, 2400)], "Кухонный двор"),
    ("Разделочные доски", "Доска из бамбука 30×20 см", [("", 490, 600)], "Attribute"),
    ("Разделочные доски", "Набор пластиковых досок, 3 шт.", [("", 790, 900)], "Attribute"),
    ("Кухонная утварь", "Лопатка силиконовая", [("", 290, 80)], "Attribute"),
    ("Кухонная утварь", "Венчик стальной 25 см", [("", 350, 90)], "Fissman"),
    ("Кухонная утварь", "Половник", [("", 390, 150)], "Rondell"),
    ("Кухонная утварь", "Тёрка четырёхгранная", [("", 590, 300)], "Fissman"),
    ("Кухонная утварь", "Шумовка", [("", 350, 130)], "Rondell"),
    ("Кухонная утварь", "Щипцы кулинарные", [("", 450, 140)], "Fissman"),
    ("Кухонная утварь", "Скалка деревянная", [("", 390, 400)], "Кухонный двор"),
    ("Кухонная утварь", "Мерный стакан 500 мл", [("", 290, 200)], "Attribute"),
    ("Кухонная утварь", "Ступка с пестиком", [("", 990, 1100)], "Кухонный двор"),
    ("Кухонная утварь", "Дуршлаг стальной", [("", 690, 400)], "Rondell"),
    ("Кухонная утварь", "Весы кухонные электронные", [("", 1290, 600)], "Fissman"),
    ("Кухонная утварь", "Термометр для мяса", [("", 790, 100)], "Fissman"),
    ("Кухонная утварь", "Набор кухонных принадлежностей, 6 предметов", [("", 1690, 900)], "Fissman"),
    ("Хранение продуктов", "Контейнер стеклянный", [("0,6 л", 490, 500), ("1 л", 690, 700)], "Pyrex"),
    ("Хранение продуктов", "Набор банок для сыпучих продуктов, 3 шт.", [("", 1290, 1500)], "Fissman"),
    ("Хранение продуктов", "Хлебница бамбуковая", [("", 1890, 2200)], "Attribute"),
    ("Хранение продуктов", "Вакуумный контейнер 1,2 л", [("", 990, 450)], "Fissman"),
    ("Хранение продуктов", "Мельница для специй", [("", 790, 250)], "Fissman"),
    ("Выпечка", "Форма для выпечки разъёмная", [("24 см", 890, 700), ("26 см", 990, 800)], "Fissman"),
    ("Выпечка", "Противень с антипригарным покрытием", [("", 790, 900)], "Tefal"),
    ("Выпечка", "Коврик силиконовый для выпечки", [("", 590, 200)], "Attribute"),
    ("Выпечка", "Форма для кексов на 12 шт.", [("", 690, 600)], "Attribute"),
    ("Выпечка", "Форма для пирога керамическая", [("", 1490, 1400)], "Pyrex"),
    ("Выпечка", "Форма для запекания стеклянная", [("", 1190, 1500)], "Pyrex"),
    ("Текстиль", "Фартук льняной", [("", 1190, 250)], "Кухонный двор"),
    ("Текстиль", "Полотенца вафельные, набор 3 шт.", [("", 790, 350)], "Кухонный двор"),
    ("Текстиль", "Прихватка-рукавица", [("", 390, 120)], "Кухонный двор"),
    ("Текстиль", "Скатерть льняная 140×180 см", [("", 2490, 700)], "Кухонный двор"),
]

# --- people ----------------------------------------------------------------------------------

MALE_NAMES = [
    "Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья", "Кирилл", "Михаил",
    "Никита", "Иван", "Евгений", "Владимир", "Павел", "Роман", "Олег", "Николай", "Игорь", "Денис",
    "Константин", "Виктор", "Юрий", "Антон", "Григорий", "Тимофей", "Фёдор", "Степан", "Егор", "Василий",
]
FEMALE_NAMES = [
    "Анна", "Мария", "Елена", "Ольга", "Татьяна", "Наталья", "Ирина", "Екатерина", "Светлана", "Юлия",
    "Анастасия", "Дарья", "Полина", "Ксения", "Марина", "Валентина", "Галина", "Людмила", "Вероника", "Алина",
    "Виктория", "Софья", "Надежда", "Любовь", "Кристина", "Александра", "Евгения", "Алёна", "Вера", "Оксана",
]
# Patronymics, male and female, from fathers' names.
PATRONYMICS = [
    ("Александрович", "Александровна"), ("Дмитриевич", "Дмитриевна"), ("Сергеевич", "Сергеевна"),
    ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"), ("Михайлович", "Михайловна"),
    ("Иванович", "Ивановна"), ("Владимирович", "Владимировна"), ("Павлович", "Павловна"),
    ("Николаевич", "Николаевна"), ("Игоревич", "Игоревна"), ("Викторович", "Викторовна"),
    ("Юрьевич", "Юрьевна"), ("Олегович", "Олеговна"), ("Евгеньевич", "Евгеньевна"), ("Петрович", "Петровна"),
    ("Васильевич", "Васильевна"), ("Анатольевич", "Анатольевна"), ("Геннадьевич", "Геннадьевна"),
    ("Борисович", "Борисовна"), ("Валерьевич", "Валерьевна"), ("Романович", "Романовна"),
    ("Константинович", "Константиновна"), ("Ильич", "Ильинична"), ("Фёдорович", "Фёдоровна"),
]
# Male surnames; female forms are derived (Иванов → Иванова, Покровский → Покровская, Шевченко stays).
SURNAMES = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
    "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов",
    "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв",
    "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
    "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов",
    "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров",
    "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков",
    "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов",
    "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов", "Мартынов",
    "Ефимов", "Федотов", "Щербаков", "Назаров", "Калинин", "Исаев", "Быков", "Маслов", "Родионов",
    "Коновалов", "Лазарев", "Воронин", "Климов", "Филатов", "Пономарёв", "Голубев", "Кудрявцев", "Прохоров",
    "Наумов", "Потапов", "Журавлёв", "Овчинников", "Трофимов", "Леонов", "Соболев", "Ермаков", "Колесников",
    "Гончаров", "Емельянов", "Никифоров", "Грачёв", "Котов", "Гришин", "Ефремов", "Архипов", "Громов",
    "Кириллов", "Малышев", "Панов", "Моисеев", "Румянцев", "Акимов", "Кондратьев", "Бирюков", "Горбунов",
    "Анисимов", "Ерёмин", "Тихомиров", "Галкин", "Лукьянов", "Михеев", "Скворцов", "Юдин", "Белоусов",
    "Нестеров", "Симонов", "Прокофьев", "Харитонов", "Князев", "Цветков", "Левин", "Митрофанов", "Воронов",
    "Аксёнов", "Мальцев", "Логинов", "Горшков", "Савин", "Краснов", "Майоров", "Демидов", "Елисеев",
    "Рыбаков", "Сафонов", "Плотников", "Дёмин", "Хохлов", "Жданов", "Покровский", "Вишневский", "Островский",
    "Белинский", "Зарецкий", "Шевченко", "Бондаренко", "Коваленко", "Кравченко", "Черных", "Седых", "Долгих",
]
MOBILE_CODES = [c for c in range(900, 1000) if c not in (907, 930, 940, 941, 942, 943, 944, 945, 946, 947,
                                                            948, 949, 954, 955, 956, 957, 959, 970, 971, 972,
                                                            973, 974, 975, 976, 979, 990)]
MAIL_DOMAINS = [("mail.ru", 30), ("yandex.ru", 28), ("gmail.com", 18), ("bk.ru", 6), ("inbox.ru", 5),
                ("list.ru", 5), ("rambler.ru", 4), ("ya.ru", 4)]
TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya",
})
# City, region, postcode prefix, weight, streets (real ones).
CITIES = [
    ("Москва", "", "1", 30, ["ул. Тверская", "Ленинский пр-т", "ул. Профсоюзная", "Кутузовский пр-т",
                            "ул. Покровка", "пр-т Мира", "Варшавское ш.", "ул. Бутлерова",
                            "Ломоносовский пр-т", "ул. Сретенка", "Щёлковское ш.", "ул. Академика Королёва",
                            "ул. Земляной Вал", "ул. Маросейка"]),
    ("Санкт-Петербург", "", "19", 14, ["Невский пр-т", "ул. Марата", "Лиговский пр-т", "Московский пр-т",
                                      "ул. Рубинштейна", "Каменноостровский пр-т", "ул. Савушкина",
                                      "пр-т Просвещения", "ул. Дыбенко", "Большой пр-т В.О."]),
    ("Химки", "Московская обл.", "141", 2, ["ул. Московская", "Юбилейный пр-т", "ул. Лавочкина"]),
    ("Мытищи", "Московская обл.", "141", 2, ["Новомытищинский пр-т", "ул. Мира", "Олимпийский пр-т"]),
    ("Балашиха", "Московская обл.", "143", 2, ["ш. Энтузиастов", "ул. Свердлова", "ул. Советская"]),
    ("Подольск", "Московская обл.", "142", 2, ["ул. Кирова", "Революционный пр-т", "ул. Ленина"]),
    ("Новосибирск", "Новосибирская обл.", "630", 4, ["Красный пр-т", "ул. Ленина", "ул. Кирова",
                                                    "ул. Фрунзе"]),
    ("Екатеринбург", "Свердловская обл.", "620", 4, ["ул. Малышева", "ул. Вайнера", "пр-т Ленина",
                                                    "ул. 8 Марта"]),
    ("Казань", "Республика Татарстан", "420", 4, ["ул. Баумана", "ул. Пушкина", "пр-т Победы",
                                                 "ул. Чистопольская"]),
    ("Нижний Новгород", "Нижегородская обл.", "603", 3, ["ул. Большая Покровская", "ул. Рождественская",
                                                       "пр-т Гагарина"]),
    ("Самара", "Самарская обл.", "443", 2, ["ул. Куйбышева", "Московское ш.", "ул. Ленинградская"]),
    ("Ростов-на-Дону", "Ростовская обл.", "344", 3, ["ул. Большая Садовая", "Будённовский пр-т",
                                                    "ул. Пушкинская"]),
    ("Краснодар", "Краснодарский край", "350", 3, ["ул. Красная", "ул. Северная", "ул. Ставропольская"]),
    ("Воронеж", "Воронежская обл.", "394", 2, ["пр-т Революции", "ул. Плехановская", "Московский пр-т"]),
    ("Пермь", "Пермский край", "614", 2, ["ул. Ленина", "Комсомольский пр-т", "ул. Сибирская"]),
    ("Уфа", "Республика Башкортостан", "450", 2, ["пр-т Октября", "ул. Ленина", "ул. Менделеева"]),
    ("Челябинск", "Челябинская обл.", "454", 2, ["пр-т Ленина", "ул. Кирова", "Комсомольский пр-т"]),
    ("Красноярск", "Красноярский край", "660", 2, ["пр-т Мира", "ул. Карла Маркса", "ул. Взлётная"]),
    ("Тюмень", "Тюменская обл.", "625", 1, ["ул. Республики", "ул. Мельникайте"]),
    ("Ярославль", "Ярославская обл.", "150", 1, ["ул. Свободы", "пр-т Ленина"]),
    ("Калининград", "Калининградская обл.", "236", 1, ["Ленинский пр-т", "ул. Театральная"]),
    ("Владивосток", "Приморский край", "690", 1, ["ул. Светланская", "Океанский пр-т"]),
    ("Томск", "Томская обл.", "634", 1, ["пр-т Ленина", "ул. Советская"]),
    ("Тула", "Тульская обл.", "300", 1, ["пр-т Ленина", "ул. Советская"]),
]
METRO = {"Москва", "Санкт-Петербург", "Химки", "Мытищи", "Балашиха", "Подольск"}

# --- orders ----------------------------------------------------------------------------------

# source, medium, campaign, keyword, weight: how new customers find the shop ("organic" is SEO).
FIRST_SOURCES = [
    ("yandex", "cpc", "{site}_search", "купить {thing}", 28),
    ("google", "cpc", "{site}_search", "{thing}", 8), ("vk", "social", "{site}_target", "", 12),
    ("yandex", "organic", "", "", 22), ("google", "organic", "", "", 8), ("direct", "(none)", "", "", 14),
    ("email", "email", "{site}_welcome", "", 2),
]
REPEAT_SOURCES = [
    ("direct", "(none)", "", "", 40), ("email", "email", "{site}_newsletter_{month}", "", 25),
    ("yandex", "organic", "", "", 12), ("yandex", "cpc", "{site}_retargeting", "", 10),
    ("vk", "social", "{site}_community", "", 8), ("google", "organic", "", "", 5),
]
SEARCH_THINGS = {"tea": ["пуэр", "улун", "зелёный чай", "чай с доставкой", "чайник для чая"],
                 "kitchen": ["чугунная сковорода", "набор ножей", "кастрюля", "казан", "посуда для кухни"]}
METHODS = [("shopping-cart", 58), ("phone", 14), ("one-click", 12), ("callback", 7), ("live-chat", 5),
           ("messenger", 4)]
CANCELS = [("no-call", 30, "Клиент не отвечает на звонки третий день"),
           ("no-product", 20, "Нет нужной фасовки, от замены клиент отказался"),
           ("prices-did-not-suit", 15, "Клиента не устроила стоимость доставки"),
           ("cancel-other", 35, "Клиент оформил заказ повторно")]
COMPLAINTS = {
    "defect": (20, {"tea": ["Чайник протекает у основания носика", "Трещина на пиале после первой заварки",
                            "Чай отсырел, есть посторонний запах"],
                    "kitchen": ["Антипригарное покрытие облезло через две недели", "Ручка сковороды шатается",
                                "Нож пришёл со сколом на лезвии"]}),
    "delay": (30, {"*": ["Заказ доставили на четыре дня позже обещанного",
                         "Посылка неделю лежала на сортировке", "Курьер дважды переносил доставку"]}),
    "courier": (20, {"*": ["Курьер не позвонил заранее и оставил заказ у двери",
                           "Курьер грубил и отказался подняться на этаж", "Коробку помяли при передаче"]}),
    "wrong-item": (15, {"tea": ["Вместо Те Гуань Инь пришёл Да Хун Пао", "Прислали 50 г вместо 250 г"],
                        "kitchen": ["Пришла сковорода 24 см вместо 28 см",
                                    "В наборе не хватало одного ножа"]}),
    "supplier": (5, {"tea": ["Поставщик прислал чай прошлогоднего урожая"],
                     "kitchen": ["Партия с заводским браком: сколы на эмали"]}),
    "other": (10, {"*": ["Клиент недоволен упаковкой", "Не положили обещанный подарок к заказу"]}),
}
CUSTOMER_COMMENTS = ["Позвоните, пожалуйста, за час до доставки", "Домофон не работает, наберите по телефону",
                     "Оставьте у консьержа", "Нужен чек для бухгалтерии", "Упакуйте как подарок, пожалуйста",
                     "Доставка после 18:00", "Положите, пожалуйста, пробники", "Лучше напишите в мессенджер"]
MANAGER_COMMENTS = ["Постоянный клиент — положить пробник", "Просил перезвонить после 19:00",
                    "Согласована замена на аналог", "Отправить трек-номер в мессенджер",
                    "Проверить упаковку хрупкого товара"]
NOTES = ["Предпочитает улуны, копчёные чаи не любит", "Просит не звонить после 20:00",
         "Интересуется оптовыми ценами", "Покупает подарки коллегам к праздникам",
         "Всегда просит чек на e-mail", "Был недоволен сроками доставки, предложили скидку 5%"]
SLOTS = [(datetime.time(10), datetime.time(14)), (datetime.time(14), datetime.time(18)),
         (datetime.time(18), datetime.time(22))]
HOURS = [2, 1, 0.5, 0.5, 0.5, 1, 3, 6, 10, 14, 17, 18, 18, 17, 16, 16, 16, 17, 19, 21, 22, 20, 14, 7]


# The weighted choices the generator draws from.
REPEAT_RATE = {"tea": 0.45, "kitchen": 0.25}  # tea is drunk up and bought again; a pan lasts
FEMALE_SHARE = {"tea": 0.68, "kitchen": 0.6}
PACE = {"tea": (20, 70), "kitchen": (60, 160)}  # days between a regular's orders
CITY = _Pick([(city, region, code, streets, weight) for city, region, code, weight, streets in CITIES])
MAIL_DOMAIN = _Pick(MAIL_DOMAINS)
HOUR = _Pick(list(enumerate(HOURS)))
FIRST_SOURCE, REPEAT_SOURCE, METHOD = _Pick(FIRST_SOURCES), _Pick(REPEAT_SOURCES), _Pick(METHODS)
METRO_DELIVERY = _Pick([("courier", 60), ("self-delivery", 30), ("russian-post", 5), ("ems", 5)])
REGION_DELIVERY = _Pick([("courier", 35), ("russian-post", 50), ("ems", 15)])
DELIVERY_COST = {"courier": D(300), "self-delivery": ZERO, "russian-post": D(350), "ems": D(600)}
FREE_DELIVERY = {"tea": D(3000), "kitchen": D(5000)}
# hours from shipping to the customer's hands
TRANSIT = {"courier": (24, 72), "self-delivery": (24, 72), "russian-post": (72, 240), "ems": (48, 120)}
PAYMENT = _Pick([("bank-card", 50), ("cash", 25), ("e-money", 12), ("bank-transfer", 4), ("credit", 4)])
PREPAYMENT = _Pick([("bank-card", 55), ("e-money", 18), ("cash", 15), ("bank-transfer", 7), ("credit", 4)])
ONLINE = ("bank-card", "e-money")
CANCEL = _Pick([(code, weight) for code, weight, _comment in CANCELS])
CANCEL_COMMENTS = {code: comment for code, _weight, comment in CANCELS}
COMPLAINT = _Pick([(reason, texts, weight) for reason, (weight, texts) in COMPLAINTS.items()])
TEA_LINES = _Pick([(1, 30), (2, 30), (3, 22), (4, 12), (5, 6)])
KITCHEN_LINES = _Pick([(1, 55), (2, 28), (3, 12), (4, 5)])
TEA_KINDS = _Pick([("tea", 78), ("ware", 14), ("sweet", 8)])
KITCHEN_KINDS = _Pick([("kitchen", 1)])
QUANTITY = _Pick([(1, 75), (2, 20), (3, 5)])
GROUP_OF = {code: group for code, _name, group in STATUSES}
GROUPS = [code for code, _name in STATUS_GROUPS]
# fmt: on


@dataclass
class DemoSummary:
    logins: list[tuple[str, str]]
    customers: int = 0
    orders: int = 0
    created: bool = True


@dataclass
class _Offer:
    id: int
    price: Decimal
    kind: str  # tea, ware, sweet or kitchen


@dataclass
class _Customer:
    site: str
    orders: int  # how many this customer will have placed by today
    row: CustomerRow
    city: str
    address: str
    id: int | None = None
    manager: User | None = None
    favourites: list[_Offer] = field(default_factory=list)


class _Planned(NamedTuple):
    when: datetime.datetime
    person: _Customer
    first: bool  # the customer's first order
    number: str


def logins() -> list[tuple[str, str]]:
    return [(username, role) for username, role, *_rest in STAFF]


def build_demo(
    seed: int = 1, customers: int = 2000, orders: int = 10000, out: TextIO | None = None, *, workers: int = 1
) -> DemoSummary:
    """Create the demo store, printing progress to `out`; if it is there already, leave it as it is.

    `workers` > 1 loads in that many processes (PostgreSQL; SQLite takes one writer at a time). The data
    is the same either way: each chunk of orders has its own random stream and its numbers are given.
    """
    started = time.monotonic()

    def say(text: str) -> None:
        if out is not None:
            print(f"[{time.monotonic() - started:5.1f} s] {text}", file=out, flush=True)

    if Site.objects.filter(code=SITES[0]["code"]).exists():
        say("The demo store is already in this database: nothing generated.")
        return DemoSummary(logins(), Customer.objects.count(), Order.objects.count(), created=False)
    rng = random.Random(seed)
    today = timezone.localdate()
    say(f"Creating the demo store: seed {seed}, {customers} customers, {orders} orders up to {today}")
    with transaction.atomic():
        sites = {spec["code"]: Site.objects.create(**spec) for spec in SITES}
        staff = _staff()
        offers = _catalog(sites)
    say(f"2 sites, {len(staff)} users, {len(TEAMS)} teams, {sum(map(len, offers.values()))} offers")

    calendar = _Calendar(today - datetime.timedelta(days=DAYS), today)
    people = _plan_customers(rng, customers, orders, staff, offers)
    plan = _plan_orders(rng, people, calendar)
    say(f"Planned {len(people)} customers and {len(plan)} orders")
    actor = Actor.importer("demo")
    _run(
        [
            functools.partial(_load_customers, site, chunk, actor, say)
            for code, site in sites.items()
            for chunk in _chunks([p for p in people if p.site == code])
        ],
        workers,
    )
    for code, site in sites.items():
        ids = dict(
            CustomerPhone.objects.filter(customer__site=site, position=0).values_list("number", "customer")
        )
        for person in people:
            if person.site == code:
                person.id = ids[person.row.phones[0]]
    chunks = []
    for code, site in sites.items():
        mine = _numbered(site, [(when, p) for when, p in plan if p.site == code])
        chunks += [
            functools.partial(
                _load_orders,
                random.Random(f"{seed}:{code}:{chunk[0].number}"),
                site,
                chunk,
                offers[code],
                staff,
                calendar.end,
                actor,
                say,
            )
            for chunk in _chunks(mine)
        ]
    _run(chunks, workers)
    _notes(rng, people, staff)
    recorded = _record_last_week(calendar.end)
    rules = install_default_rules(actor=Actor.system("demo"), enable=True)
    say(f"{len(rules)} default rules on; the last week's {recorded} new orders recorded as events (dry runs)")
    costs = _ad_costs(rng, sites, calendar.days[0], calendar.end)
    say(f"{costs} monthly ad costs booked by source (for CAC and ROMI)")
    for site in sites.values():
        report = metrics.refresh_site(site)
        pairs = crosssell.refresh_pairs(site)
        fit = report.fit
        models = "models fitted" if fit is not None and fit.sufficient else "models: not enough data"
        say(f"Analytics of {site.code}: {report.customers} customers, {models}, {pairs} product pairs")
    groups = dict(Order.objects.values_list("status__group__code").annotate(n=Count("id")).order_by())
    regulars = sum(1 for p in people if p.orders >= 2)
    say(
        f"Done: {len(people)} customers ({regulars * 100 // max(len(people), 1)}% with two or more orders), "
        f"{len(plan)} orders: " + ", ".join(f"{groups[g]} {g}" for g in GROUPS if g in groups)
    )
    return DemoSummary(logins(), len(people), len(plan))


# source, medium, roubles a month per site: what the paid channels cost (for CAC and ROMI).
AD_SPEND = [("yandex", "cpc", 60000), ("google", "cpc", 20000), ("vk", "social", 25000)]


def _ad_costs(rng: random.Random, sites: dict[str, Site], start: datetime.date, end: datetime.date) -> int:
    """A month's spend per paid source and site, booked through the analytics actions."""
    actor = Actor.system("demo")
    group, _created = analytics_actions.save_cost_group("advertising", {"name": "Реклама"}, actor=actor)
    item, _created = analytics_actions.save_cost_item(
        "ads", {"name": "Интернет-реклама", "group": group}, actor=actor
    )
    booked = 0
    month = start.replace(day=1)
    while month <= end:
        last = (month + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
        for site in sites.values():
            for source, medium, monthly in AD_SPEND:
                amount = Decimal(round(monthly * rng.uniform(0.8, 1.2), -2))
                analytics_actions.create_cost(
                    analytics_actions.CostData(
                        date_from=month,
                        date_to=min(last, end),
                        summ=amount,
                        cost_item=item,
                        sites=[site],
                        source=source,
                        medium=medium,
                    ),
                    actor=actor,
                )
                booked += 1
        month = last + datetime.timedelta(days=1)
    return booked


def _record_last_week(today: datetime.date) -> int:
    """The import raises no events (automation is muted for it). A shop that has run for a while has its
    recent orders in the event log, which the rules' dry run replays: record the last week's orders as
    `orders.created` events, already processed, so that no rule acts on them now."""
    since = timezone.make_aware(
        datetime.datetime.combine(today - datetime.timedelta(days=7), datetime.time())
    )
    recent = list(
        Order.objects.filter(created_at__gte=since).values_list(
            "id", "site__code", "customer_id", "status__code", "manager_id", "created_at"
        )
    )
    actor = Actor.importer("demo").as_dict()
    now = timezone.now()
    with transaction.atomic():
        made = OutboxEvent.objects.bulk_create(
            OutboxEvent(
                type=OrderCreated.type,
                payload=asdict(OrderCreated(pk, site, customer, status, manager)),
                actor=actor,
                processed_at=now,
            )
            for pk, site, customer, status, manager, _at in recent
        )
        for event, row in zip(made, recent, strict=True):  # created_at is set on insert: put the real time
            OutboxEvent.objects.filter(pk=event.pk).update(created_at=row[5])
    return len(made)


def _load_customers(site: Site, people: list[_Customer], actor: Actor, say: Callable[[str], None]) -> None:
    _check(import_customers(site, (p.row for p in people), actor=actor))
    say(f"customers of {site.name}: {len(people)} more")


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]


def _numbered(site: Site, plan: list[tuple[datetime.datetime, _Customer]]) -> list[_Planned]:
    """The site's orders in time order, numbered as the shop's counter would have, each knowing whether it
    is its customer's first."""
    seen: set[int] = set()
    numbered = []
    for number, (when, person) in enumerate(plan, start=1):
        numbered.append(_Planned(when, person, id(person) not in seen, f"{number}{site.order_suffix}"))
        seen.add(id(person))
    return numbered


def _load_orders(
    rng: random.Random,
    site: Site,
    chunk: list[_Planned],
    offers: list[_Offer],
    staff: dict[str, User],
    today: datetime.date,
    actor: Actor,
    say: Callable[[str], None],
) -> None:
    _check(import_orders(site, _order_rows(rng, site.code, chunk, offers, staff, today), actor=actor))
    say(f"orders of {site.name}: {chunk[0].number}…{chunk[-1].number}")


def _run(units: list[Callable[[], None]], workers: int) -> None:
    """Run the units here, or in up to `workers` processes at a time."""
    if workers <= 1:
        for unit in units:
            unit()
        return
    connections.close_all()  # each process opens its own connection
    context = multiprocessing.get_context("fork")
    pending, running = list(units), []
    while pending or running:
        while pending and len(running) < workers:
            running.append(context.Process(target=pending.pop(0)))
            running[-1].start()
        wait([process.sentinel for process in running])
        for process in [p for p in running if p.exitcode is not None]:
            running.remove(process)
            if process.exitcode:
                for other in running:
                    other.terminate()
                raise RuntimeError("loading the demo store failed (see the error above)")


def _check(result: ImportResult) -> None:
    if result.errors:
        raise RuntimeError("the demo data was refused: " + "; ".join(str(e) for e in result.errors[:5]))


def _staff() -> dict[str, User]:
    system = Actor.system("demo")
    users = {
        username: create_user(
            username,
            role=role,
            password=DEMO_PASSWORD,
            actor=system,
            site_codes=sites,
            first_name=first,
            last_name=last,
            email=f"{username}@lavka.example",
            check_password=False,
        )
        for username, role, first, last, sites, _team, _share in STAFF
    }
    teams = {name: save_team(None, name=name, supervisor=users["sveta"], actor=system) for name in TEAMS}
    for extension, (username, _role, _first, _last, _sites, team, _share) in enumerate(STAFF, start=101):
        if team:
            update_user(
                users[username],
                actor=system,
                team=teams[team],
                working_hours=WORKING_HOURS,
                phone_extension=str(extension),
            )
    return users


def _catalog(sites: dict[str, Site]) -> dict[str, list[_Offer]]:
    """Categories, products and offers. The catalog has no actions yet: like the reference books in
    orders.defaults, it is written directly."""
    tea, kitchen = sites["tea"], sites["kitchen"]
    categories: dict[tuple[str, str], Category] = {}

    def category(site: Site, name: str, parent: str | None = None) -> Category:
        if (site.code, name) not in categories:
            categories[site.code, name] = Category.objects.create(
                site=site, name=name, parent=category(site, parent) if parent else None
            )
        return categories[site.code, name]

    # (product, kind, [(offer name, sku, price, grams)])
    made: list[tuple[Product, str, list[tuple[str, str, Decimal, int]]]] = []
    for number, (group, name, price) in enumerate(
        ((group, name, price) for group, teas in TEAS.items() for name, price in teas), start=1
    ):
        article = f"T{number:03d}"
        product = Product(
            site=tea,
            category=category(tea, group, "Чай"),
            name=name,
            article=article,
            manufacturer="Россия" if name.startswith("Иван") else "Китай",
        )
        made.append(
            (
                product,
                "tea",
                [
                    (f"{name}, {grams} г", f"{article}-{grams}", _shop_price(D(price) * factor), grams)
                    for grams, factor in TEA_WEIGHTS
                ],
            )
        )
    for number, (group, name, price, grams, maker) in enumerate(TEA_GOODS, start=len(made) + 1):
        article = f"T{number:03d}"
        product = Product(
            site=tea, category=category(tea, group), name=name, article=article, manufacturer=maker
        )
        made.append(
            (product, "ware" if group == "Посуда для чая" else "sweet", [(name, article, D(price), grams)])
        )
    for number, (group, name, variants, maker) in enumerate(KITCHEN, start=1):
        article = f"K{number:03d}"
        product = Product(
            site=kitchen, category=category(kitchen, group), name=name, article=article, manufacturer=maker
        )
        made.append(
            (
                product,
                "kitchen",
                [
                    (f"{name} {label}".strip(), f"{article}-{i}", D(price), grams)
                    for i, (label, price, grams) in enumerate(variants, start=1)
                ],
            )
        )
    Product.objects.bulk_create([product for product, _kind, _variants in made])
    offers = [
        (
            kind,
            Offer(
                product=product,
                sku=sku,
                name=name,
                article=product.article,
                price=price,
                purchase_price=_shop_price(price * D("0.52")),
                weight=grams,
            ),
        )
        for product, kind, variants in made
        for name, sku, price, grams in variants
    ]
    Offer.objects.bulk_create([offer for _kind, offer in offers])
    by_site: dict[str, list[_Offer]] = {code: [] for code in sites}
    for kind, offer in offers:
        by_site["kitchen" if kind == "kitchen" else "tea"].append(_Offer(offer.pk, offer.price, kind))
    return by_site


def _shop_price(amount: Decimal) -> Decimal:
    """Prices end in a zero: 379.50 → 380."""
    return (amount / 10).quantize(D(1)) * 10


# --- customers -------------------------------------------------------------------------------


def _order_counts(rng: random.Random, sites: list[str], orders: int) -> list[int]:
    """How many orders each customer places: 5% none, most one, regulars (~37%) two or more."""
    counts = []
    for site in sites:
        draw = rng.random()
        counts.append(0 if draw < 0.05 else 2 if draw < 0.05 + REPEAT_RATE[site] else 1)
    total = sum(counts)
    for level in (2, 1):  # too few orders for that many buyers: demote from the end
        for i in range(len(counts) - 1, -1, -1):
            if total <= orders:
                break
            if counts[i] == level:
                counts[i], total = counts[i] - 1, total - 1
    regulars = [i for i, n in enumerate(counts) if n == 2] or [i for i, n in enumerate(counts) if n == 1]
    extra = orders - total
    if extra > 0 and regulars:
        # Loyalty is long-tailed: a few order every few weeks, most come back a handful of times.
        weights = [min(rng.paretovariate(1.2), 40.0) for _ in regulars]
        scale = extra / sum(weights)
        shares = [w * scale for w in weights]
        given = [int(share) for share in shares]
        by_remainder = sorted(range(len(shares)), key=lambda k: given[k] - shares[k])
        for k in by_remainder[: extra - sum(given)]:
            given[k] += 1
        for i, n in zip(regulars, given, strict=True):
            counts[i] += n
    return counts


def _plan_customers(
    rng: random.Random, count: int, orders: int, staff: dict[str, User], offers: dict[str, list[_Offer]]
) -> list[_Customer]:
    sites = ["tea" if rng.random() < 0.6 else "kitchen" for _ in range(count)]
    counts = _order_counts(rng, sites, orders)
    managers = _managers(staff)
    phones: set[str] = set()
    emails: set[str] = set()
    people = [_person(rng, site, n, phones, emails) for site, n in zip(sites, counts, strict=True)]
    staples = {
        site: [o for o in site_offers if o.kind in ("tea", "kitchen")] for site, site_offers in offers.items()
    }
    for person in people:
        if person.orders >= 2:  # what a regular comes back for
            person.favourites = [rng.choice(staples[person.site]) for _ in range(3)]
        if person.orders >= 4 and rng.random() < 0.7:  # a regular has their own manager
            person.manager = managers[person.site](rng)[0]
            person.row.manager, person.row.manager_set = person.manager, True
    for person in sorted(people, key=lambda p: -p.orders)[: max(count // 50, 1)]:
        if person.orders >= 5:
            person.row.vip = True
            person.row.tags = ["VIP", *(person.row.tags or [])]
    return people


def _managers(staff: dict[str, User]) -> dict[str, _Pick]:
    """Per site, its managers weighted by their share of the work (Anna and Olga carry the most)."""
    return {
        site: _Pick(
            [
                (staff[username], share)
                for username, role, _f, _l, sites, _t, share in STAFF
                if role == "manager" and site in sites
            ]
        )
        for site in REPEAT_RATE
    }


def _person(rng: random.Random, site: str, orders: int, phones: set[str], emails: set[str]) -> _Customer:
    female = rng.random() < FEMALE_SHARE[site]
    first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    surname = rng.choice(SURNAMES)
    phone = ""
    while not phone or phone in phones:
        phone = f"+7{rng.choice(MOBILE_CODES)}{rng.randrange(10_000_000):07d}"
    phones.add(phone)
    email = _email(rng, first, surname, emails) if rng.random() < 0.8 else ""
    city, region, postcode, streets, _weight = CITY(rng)
    building = str(rng.randint(1, 120)) + (rng.choice(["к1", "к2", "с1", "А"]) if rng.random() < 0.2 else "")
    flat = str(rng.randint(1, 320)) if rng.random() < 0.93 else ""
    digits = 6 - len(postcode)
    index = f"{postcode}{rng.randrange(10**digits):0{digits}d}"
    street = rng.choice(streets)
    parts = (index, region, f"г. {city}", street, f"д. {building}", f"кв. {flat}" if flat else "")
    address = {
        "index": index,
        "region": region,
        "city": city,
        "street": street,
        "building": building,
        "flat": flat,
        "text": ", ".join(p for p in parts if p),
    }
    consents = {("sms", "service"): True, ("sms", "marketing"): rng.random() < 0.3}
    if email:
        consents |= {("email", "service"): True, ("email", "marketing"): rng.random() < 0.6}
    if rng.random() < 0.4:
        consents[("messenger", "service")] = True
    tags = [
        tag
        for tag, chance in (("опт", 0.01 if site == "kitchen" else 0), ("подарочная упаковка", 0.03))
        if rng.random() < chance
    ]
    birthday = None
    if rng.random() < 0.55:
        birthday = datetime.date(rng.randint(1955, 2004), rng.randint(1, 12), rng.randint(1, 28))
    row = CustomerRow(
        first_name=first,
        last_name=_feminine(surname) if female else surname,
        patronymic=rng.choice(PATRONYMICS)[1 if female else 0],
        sex="female" if female else "male",
        email=email,
        phones=[phone],
        birthday=birthday,
        address=address,
        consents=consents,
        consent_source="checkout form",
        tags=tags,
    )
    return _Customer(site=site, orders=orders, row=row, city=city, address=address["text"])


def _feminine(surname: str) -> str:
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    return surname  # Шевченко, Черных


def _email(rng: random.Random, first: str, surname: str, taken: set[str]) -> str:
    name, family = first.lower().translate(TRANSLIT), surname.lower().translate(TRANSLIT)
    local = rng.choice(
        [
            f"{name}.{family}",
            f"{family}.{name}",
            f"{name[0]}.{family}",
            f"{family}{rng.randint(70, 99)}",
            f"{name}{rng.randint(1, 2005)}",
        ]
    )
    domain = MAIL_DOMAIN(rng)[0]
    email = f"{local}@{domain}"
    while email in taken:
        email = f"{local}{rng.randint(1, 999)}@{domain}"
    taken.add(email)
    return email


# --- orders ----------------------------------------------------------------------------------


class _Calendar:
    """The days of the two years, weighted by the shops' growth and the seasons."""

    def __init__(self, start: datetime.date, end: datetime.date) -> None:
        self.end = end
        self.days = [start + datetime.timedelta(days=i) for i in range((end - start).days)]
        self.cumulative = list(
            accumulate(self.weight(day, i / len(self.days)) for i, day in enumerate(self.days))
        )

    @staticmethod
    def weight(day: datetime.date, age: float) -> float:
        w = 0.7 + 0.6 * age  # the shops grow
        if day.month == 12:
            w *= 1.3 + 1.2 * min(day.day, 28) / 28  # presents before New Year
        elif day.month == 1 and day.day <= 8:
            w *= 0.5  # the holidays
        elif (day.month == 2 and day.day >= 20) or (day.month == 3 and day.day <= 7):
            w *= 1.8  # 23 February and 8 March
        elif day.month in (6, 7, 8):
            w *= 0.7  # dachas and holidays
        elif day.month == 11 and day.day >= 20:
            w *= 1.3  # the November sales
        return w * (1.05, 1.0, 1.0, 1.0, 0.95, 0.85, 1.1)[day.weekday()]

    def pick(self, rng: random.Random, first: int = 0, last: int | None = None) -> int:
        """A day index in [first, last], by weight."""
        last = len(self.days) - 1 if last is None else last
        low = self.cumulative[first - 1] if first else 0.0
        found = bisect.bisect_left(self.cumulative, low + rng.random() * (self.cumulative[last] - low))
        return min(max(found, first), last)

    def moment(self, rng: random.Random, index: int) -> datetime.datetime:
        day = self.days[index]
        hour = HOUR(rng)[0]
        return datetime.datetime(
            day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=ZONE
        )


def _plan_orders(
    rng: random.Random, people: list[_Customer], calendar: _Calendar
) -> list[tuple[datetime.datetime, _Customer]]:
    """When each order is placed: one-off buyers any day (by season); regulars at their own pace, some of
    whom stopped buying months ago."""
    plan = []
    last_day = len(calendar.days) - 1
    for person in people:
        if person.orders == 0:
            person.row.created_at = calendar.moment(rng, calendar.pick(rng))
            continue
        if person.orders == 1:
            days = [calendar.pick(rng)]
        else:
            # A regular buys every `gap` days or so, up to today or (lapsed: 30%) until half a year or
            # more ago; the season decides the days.
            gap = rng.uniform(*PACE[person.site])
            end = max(0, last_day - rng.randint(180, 400)) if rng.random() < 0.3 else last_day
            begin = max(0, end - int(gap * (person.orders - 1)))
            days = [calendar.pick(rng, begin, end) for _ in range(person.orders)]
        moments = sorted(calendar.moment(rng, day) for day in days)
        person.row.created_at = moments[0] - datetime.timedelta(minutes=rng.randint(1, 30))
        plan += [(moment, person) for moment in moments]
    plan.sort(key=lambda item: item[0])
    return plan


def _order_rows(
    rng: random.Random,
    code: str,
    plan: list[_Planned],
    offers: list[_Offer],
    staff: dict[str, User],
    today: datetime.date,
) -> Iterator[OrderRow]:
    now = datetime.datetime(today.year, today.month, today.day, tzinfo=ZONE)
    manager_of = _managers(staff)[code]
    catalog = {kind: [o for o in offers if o.kind == kind] for kind in ("tea", "ware", "sweet", "kitchen")}
    for created, person, first, number in plan:
        lines = _lines(rng, code, person, catalog)
        items_total = sum((totals.line_total(o.price, D(q), ZERO, pct) for o, q, pct in lines), ZERO)
        delivery = (METRO_DELIVERY if person.city in METRO else REGION_DELIVERY)(rng)[0]
        cost = ZERO if items_total >= FREE_DELIVERY[code] and delivery != "ems" else DELIVERY_COST[delivery]
        percent = D(rng.choice([5, 10])) if rng.random() < 0.08 else ZERO
        total = totals.order_totals(
            [(items_total, ZERO)], delivery_cost=cost, discount_amount=ZERO, discount_percent=percent
        )[2]
        payment = PAYMENT(rng)[0] if delivery in ("courier", "self-delivery") else PREPAYMENT(rng)[0]
        if payment == "credit" and total < 10000:
            payment = "bank-card"
        status, since, stages = _status(rng, created, now, delivery, payment)
        group = GROUP_OF[status]
        manager = None
        if group != Group.NEW or rng.random() < 0.35:  # new orders wait in the queue, most of them unassigned
            manager = person.manager or manager_of(rng)[0]
        source, medium, campaign, keyword, _w = (FIRST_SOURCE if first else REPEAT_SOURCE)(rng)
        row = OrderRow(
            number=number,
            customer_id=person.id,
            order_method=METHOD(rng)[0],
            status=status,
            status_updated_at=since,
            manager=manager,
            manager_set=True,
            created_at=created,
            items=[ItemData(offer_id=o.id, quantity=q, discount_manual_percent=pct) for o, q, pct in lines],
            payments=_payments(rng, payment, status, total, created, stages),
            delivery_type=delivery,
            delivery_cost=cost,
            discount_manual_percent=percent,
            delivery_address="" if delivery == "self-delivery" else person.address,
            source=source,
            medium=medium,
            campaign=campaign.format(site=code, month=f"{created:%Y_%m}"),
            keyword=keyword.format(thing=rng.choice(SEARCH_THINGS[code])),
            customer_comment=rng.choice(CUSTOMER_COMMENTS) if rng.random() < 0.15 else "",
            manager_comment=rng.choice(MANAGER_COMMENTS) if manager and rng.random() < 0.08 else "",
        )
        if delivery in ("courier", "self-delivery"):
            row.delivery_date = (created + datetime.timedelta(days=rng.randint(1, 3))).date()
        if delivery == "courier":
            row.delivery_time_from, row.delivery_time_to = rng.choice(SLOTS)
        if group == Group.CANCEL:
            row.status_comment = CANCEL_COMMENTS[status]
        if group == Group.COMPLAINT:
            reason, texts, _w = COMPLAINT(rng)
            row.complaint_reason, row.complaint_comment = reason, rng.choice(texts.get(code) or texts["*"])
        yield row


def _lines(
    rng: random.Random, code: str, person: _Customer, catalog: dict[str, list[_Offer]]
) -> list[tuple[_Offer, int, Decimal]]:
    """What one order holds: regulars come back for their favourites."""
    count, kind_of, again = (
        (TEA_LINES, TEA_KINDS, 0.6) if code == "tea" else (KITCHEN_LINES, KITCHEN_KINDS, 0.3)
    )
    picks = [
        rng.choice(person.favourites)
        if person.favourites and rng.random() < again
        else rng.choice(catalog[kind_of(rng)[0]])
        for _ in range(count(rng)[0])
    ]
    lines: dict[int, tuple[_Offer, int, Decimal]] = {}
    for offer in picks:
        if offer.id in lines:
            _offer, quantity, percent = lines[offer.id]
            lines[offer.id] = (offer, quantity + 1, percent)
        else:
            lines[offer.id] = (offer, QUANTITY(rng)[0], D(10) if rng.random() < 0.04 else ZERO)
    return list(lines.values())


def _status(
    rng: random.Random, created: datetime.datetime, now: datetime.datetime, delivery: str, payment: str
) -> tuple[str, datetime.datetime, dict[str, datetime.datetime]]:
    """Where the order stands today, and since when. Each moves new → approval → assembling → delivery →
    complete at its own pace; 14% are cancelled on the way and about 1% end in a complaint."""
    hour = datetime.timedelta(hours=1)
    approved = created + rng.uniform(0.3, 30) * hour
    assembling = approved + rng.uniform(3, 30) * hour
    shipped = assembling + rng.uniform(3, 24) * hour
    delivered = shipped + rng.uniform(*TRANSIT[delivery]) * hour
    stages = {"approved": approved, "delivered": delivered}
    outcome = rng.random()
    if outcome < 0.14:
        cancelled = created + rng.uniform(1, 72) * hour
        if cancelled <= now:
            return CANCEL(rng)[0], cancelled, stages
    elif outcome < 0.151:
        complained = delivered + rng.uniform(24, 240) * hour
        if complained <= now:
            return ("complaint" if rng.random() < 0.7 else "return"), complained, stages
    steps = [
        ("complete", delivered),
        ("delivering", shipped + 4 * hour),
        ("send-to-delivery", shipped),
        ("assembling-complete", assembling + 2 * hour),
        ("send-to-assembling", assembling),
    ]
    for status, moment in steps:
        if moment <= now:
            return ("redirect" if status == "delivering" and rng.random() < 0.1 else status), moment, stages
    if approved <= now:
        confirmed = ["availability-confirmed", "client-confirmed"]
        return rng.choice(confirmed + ["prepayed"] * (payment in ONLINE)), approved, stages
    return "new", created, stages


def _payments(
    rng: random.Random,
    kind: str,
    status: str,
    total: Decimal,
    created: datetime.datetime,
    stages: dict[str, datetime.datetime],
) -> list[PaymentData]:
    """One payment per order, its status consistent with the order's: completed orders are paid, cash is
    paid on delivery, an online payment of a cancelled order is refunded or failed."""
    if total <= 0:
        return []
    group = GROUP_OF[status]
    online = kind in ONLINE
    if group in (Group.COMPLETE, Group.COMPLAINT):
        state = "returned" if status == "return" else "paid"
    elif group == Group.CANCEL:
        state = rng.choice(["returned", "fail"]) if online else "not-paid"
    elif kind == "cash":
        state = "not-paid"
    elif kind == "bank-transfer":
        state = "invoice"
    elif status == "new" and rng.random() < 0.4:
        state = "not-paid"
    else:
        state = "paid"
    if online:
        paid_at = created + datetime.timedelta(minutes=rng.randint(2, 20))
    else:
        paid_at = stages["delivered"] if kind == "cash" else stages["approved"]
    return [
        PaymentData(
            type=kind, status=state, amount=total, paid_at=paid_at if state in ("paid", "returned") else None
        )
    ]


def _notes(rng: random.Random, people: list[_Customer], staff: dict[str, User]) -> None:
    """A few notes managers left on their regulars' cards."""
    regulars = [p for p in people if p.orders >= 3]
    for person in rng.sample(regulars, k=min(len(regulars), max(3, len(people) // 100), 40)):
        customer = Customer.objects.get(pk=person.id)
        add_note(customer, rng.choice(NOTES), actor=Actor.for_user(person.manager or staff["maria"]))
